// A chat webhook: Slack (incoming webhook), Discord, or plain JSON for anything else. Each gets the notice in its
// own markup, with the login links as labelled links. The webhook URL is a credential: it is only ever passed to
// fetch, never into a message, a log line or an error.
import type { Notice } from './notice.ts';
import type { SendOptions } from './notify.ts';
import { type PostOptions, postJson, truncate } from './post.ts';

export type WebhookFormat = 'slack' | 'discord' | 'json';

export interface WebhookTarget {
  url: string;
  format: WebhookFormat;
}

/** Discord's limit on a message's content. */
export const DISCORD_CONTENT_LIMIT = 2000;

/** The body with each button's link written as `link(label, url)`: in place where the body has it, else appended. */
function withLinks(notice: Notice, body: string, link: (label: string, url: string) => string): string {
  let text = body;
  const extra: string[] = [];
  for (const b of notice.buttons ?? []) {
    if (text.includes(b.url)) text = text.replace(b.url, () => link(b.label, b.url));
    else extra.push(link(b.label, b.url));
  }
  return extra.length ? `${text}\n\n${extra.join('\n')}` : text;
}

/** Slack's three control characters; everything else is text. */
const slackEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function slackMessage(notice: Notice): Record<string, unknown> {
  // The body is escaped first and the links put in after, so their <url|label> markup survives.
  const label = (s: string) => slackEscape(s).replace(/\|/g, '¦');
  const escapedButtons = (notice.buttons ?? []).map((b) => ({ ...b, url: slackEscape(b.url) }));
  const body = withLinks({ ...notice, buttons: escapedButtons }, slackEscape(notice.body), (l, url) => {
    return `<${url}|${label(l)}>`;
  });
  return { text: `*${slackEscape(notice.subject)}*\n\n${body}` };
}

function discordMessage(notice: Notice): Record<string, unknown> {
  const link = (label: string, url: string) => `[${label.replace(/[[\]]/g, '')}](${url})`;
  let content = `**${notice.subject}**\n\n${withLinks(notice, notice.body, link)}`;
  if (content.length > DISCORD_CONTENT_LIMIT) {
    // Too long with every account's text: the subject and the links, which are what matters.
    const links = (notice.buttons ?? []).map((b) => link(b.label, b.url)).join('\n');
    content = `**${notice.subject}**\n\n${links}`;
  }
  // No mentions (an account name is never an @everyone), no link previews (flags: SUPPRESS_EMBEDS).
  return { content: truncate(content, DISCORD_CONTENT_LIMIT), allowed_mentions: { parse: [] }, flags: 4 };
}

function jsonMessage(notice: Notice): Record<string, unknown> {
  return {
    event: notice.event,
    subject: notice.subject,
    text: notice.body,
    accounts: notice.accounts ?? [],
    links: (notice.buttons ?? []).map((b) => ({ label: b.label, url: b.url })),
  };
}

/** The request body a webhook of `format` gets for a notice. */
export function webhookMessage(notice: Notice, format: WebhookFormat): Record<string, unknown> {
  if (format === 'slack') return slackMessage(notice);
  if (format === 'discord') return discordMessage(notice);
  return jsonMessage(notice);
}

/** Posts a notice to the webhook; throws NotifyError naming only the channel and the status or errno. */
export async function sendWebhook(
  target: WebhookTarget,
  notice: Notice,
  options: SendOptions & Pick<PostOptions, 'fetch' | 'backoff'> = {},
): Promise<void> {
  await postJson({
    channel: 'webhook',
    url: target.url,
    body: webhookMessage(notice, target.format),
    ...options,
  });
}
