// Which channels a deployment speaks on, from its settings: SNS when ALERT_TOPIC_ARN is set, Telegram when
// TELEGRAM_SECRET_ID is, a chat webhook when WEBHOOK_SECRET_ID is. Each channel's code, SDK client, secret and the
// secret's schema load with its first notice, so a cold start that says nothing pays for none of them.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import { lazyAsync } from '../shared/lazy.ts';
import type { Notice } from './notice.ts';
import type { Channel, SendOptions } from './notify.ts';
import type { PostOptions } from './post.ts';
import type { TelegramTarget } from './telegram.ts';

export interface ChannelSettings {
  alertTopicArn?: string | undefined;
  telegramSecretId?: string | undefined;
  telegramApiUrl: string;
  webhookSecretId?: string | undefined;
}

/** Ready clients and a fetch for tests; in Lambda the defaults. */
export interface ChannelOptions extends Pick<PostOptions, 'fetch' | 'backoff'> {
  sns?: SNSClient;
  secrets?: SecretsManagerClient;
}

type ChannelSecrets = typeof import('./channel-secrets.ts');

/** A channel's secret, read and checked with its first notice; the parsing code loads only then too. */
function secretOf<T>(
  secretId: string,
  options: ChannelOptions,
  parse: (secrets: ChannelSecrets, text: string | undefined, id: string) => T,
): () => Promise<T> {
  return lazyAsync(async () => {
    const [{ getSecretString }, secrets] = await Promise.all([
      import('../lambda/secret-string.ts'),
      import('./channel-secrets.ts'),
    ]);
    return parse(secrets, await getSecretString(secretId, options.secrets), secretId);
  });
}

function snsChannel(topicArn: string, options: ChannelOptions): Channel {
  const publisher = lazyAsync(async () =>
    (await import('./sns.ts')).snsPublisher(topicArn, { client: options.sns }),
  );
  return { name: 'sns', send: async (notice) => (await publisher())(notice) };
}

function telegramChannel(secretId: string, apiUrl: string, options: ChannelOptions): Channel {
  const secret = secretOf(secretId, options, (m, text, id) => m.parseTelegramSecret(text, id));
  return {
    name: 'telegram',
    send: async (notice: Notice, send: SendOptions) => {
      const [{ sendTelegram }, s] = await Promise.all([import('./telegram.ts'), secret()]);
      const target: TelegramTarget = { apiUrl, ...s };
      await sendTelegram(target, notice, { ...send, fetch: options.fetch, backoff: options.backoff });
    },
  };
}

function webhookChannel(secretId: string, options: ChannelOptions): Channel {
  const secret = secretOf(secretId, options, (m, text, id) => m.parseWebhookSecret(text, id));
  return {
    name: 'webhook',
    send: async (notice: Notice, send: SendOptions) => {
      const [{ sendWebhook }, target] = await Promise.all([import('./webhook.ts'), secret()]);
      await sendWebhook(target, notice, { ...send, fetch: options.fetch, backoff: options.backoff });
    },
  };
}

/** The channels the settings configure, in a fixed order (sns, telegram, webhook); empty when none is. */
export function configuredChannels(settings: ChannelSettings, options: ChannelOptions = {}): Channel[] {
  const channels: Channel[] = [];
  if (settings.alertTopicArn) channels.push(snsChannel(settings.alertTopicArn, options));
  if (settings.telegramSecretId) {
    channels.push(telegramChannel(settings.telegramSecretId, settings.telegramApiUrl, options));
  }
  if (settings.webhookSecretId) channels.push(webhookChannel(settings.webhookSecretId, options));
  return channels;
}
