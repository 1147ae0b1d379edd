// How each channel renders a notice, without a network: Telegram's sendMessage body, the Slack, Discord and JSON
// webhook bodies, the cut to a channel's limit, and how a failure is described for a log line.
import { describe, expect, it } from 'vitest';
import type { Notice } from '../../lib/notify/notice.ts';
import { safeDescription } from '../../lib/notify/notify.ts';
import { truncate } from '../../lib/notify/post.ts';
import { telegramMessage } from '../../lib/notify/telegram.ts';
import { webhookMessage } from '../../lib/notify/webhook.ts';
import { ConfigError, NotifyError } from '../../lib/shared/errors.ts';

const notice: Notice = {
  event: 'ready',
  subject: 'Ready for market open',
  body: 'Both accounts <alice & bob> hold a token valid until 06:00 IST.',
  accounts: ['alice', 'bob'],
};

describe('telegramMessage', () => {
  it('has no keyboard when the notice has no buttons', () => {
    expect(telegramMessage(notice, 42)).toEqual({
      chat_id: 42,
      text: 'Ready for market open\n\nBoth accounts <alice & bob> hold a token valid until 06:00 IST.',
      link_preview_options: { is_disabled: true },
    });
  });

  it('puts each button on a row of its own', () => {
    const buttons = [
      { label: 'Log in to Kite (alice)', url: 'https://kite.example/a' },
      { label: 'Log in to Kite (bob)', url: 'https://kite.example/b' },
    ];
    expect(telegramMessage({ ...notice, buttons }, '1').reply_markup).toEqual({
      inline_keyboard: [
        [{ text: 'Log in to Kite (alice)', url: 'https://kite.example/a' }],
        [{ text: 'Log in to Kite (bob)', url: 'https://kite.example/b' }],
      ],
    });
  });
});

describe('webhookMessage', () => {
  it('escapes Slack’s control characters in the text and appends a link the body does not write out', () => {
    const message = webhookMessage(
      { ...notice, buttons: [{ label: 'Open | status', url: 'https://kite.example/s?a=1&b=2' }] },
      'slack',
    );
    expect(message).toEqual({
      text:
        '*Ready for market open*\n\nBoth accounts &lt;alice &amp; bob&gt; hold a token valid until 06:00 IST.' +
        '\n\n<https://kite.example/s?a=1&amp;b=2|Open ¦ status>',
    });
  });

  it('keeps square brackets out of a Discord link label', () => {
    const message = webhookMessage(
      { ...notice, buttons: [{ label: 'Log in [alice]', url: 'https://kite.example/a' }] },
      'discord',
    );
    expect(String(message.content).endsWith('[Log in alice](https://kite.example/a)')).toBe(true);
  });

  it('gives the JSON format empty lists when the notice has no accounts or links', () => {
    expect(webhookMessage({ event: 'not_ready', subject: 's', body: 'b' }, 'json')).toEqual({
      event: 'not_ready',
      subject: 's',
      text: 'b',
      accounts: [],
      links: [],
    });
  });
});

describe('truncate', () => {
  it('leaves text within the limit as it is, and ends cut text in an ellipsis', () => {
    expect(truncate('abc', 3)).toBe('abc');
    expect(truncate('abcdef', 4)).toBe('abc…');
  });

  it('never splits a surrogate pair', () => {
    const cut = truncate(`ab${'😀'.repeat(5)}`, 6);
    expect(cut).toBe('ab😀…');
    expect(cut.length).toBeLessThanOrEqual(6);
  });
});

describe('safeDescription', () => {
  it('shows the product’s own errors, and only the class of anything else from a chat channel', () => {
    expect(
      safeDescription(
        new NotifyError('Telegram answered 401 Unauthorized', { channel: 'Telegram', retryable: false }),
        'telegram',
      ),
    ).toBe('NotifyError: Telegram answered 401 Unauthorized');
    expect(safeDescription(new ConfigError('secret x (WEBHOOK_SECRET_ID) has no "url"'), 'webhook')).toBe(
      'ConfigError: secret x (WEBHOOK_SECRET_ID) has no "url"',
    );
    expect(safeDescription(new TypeError('fetch failed for https://hooks.example/secret'), 'webhook')).toBe(
      'TypeError',
    );
  });
});
