// The container's notifier: every channel its settings configure, built once per cold start (channel code, clients
// and secrets load with the first notice). Reminders and the market-open check speak through it.
import { configuredChannels } from '../notify/channels.ts';
import type { Notify } from '../notify/notice.ts';
import { fanOut } from '../notify/notify.ts';
import { type LambdaContext, log, metrics } from './context.ts';

let cached: { settings: LambdaContext['settings']; notify: Notify | undefined } | undefined;

/** Sends to SNS, Telegram and the webhook, whichever are configured; undefined when none is (nothing to say). */
export function notifierFor(context: LambdaContext): Notify | undefined {
  if (cached?.settings !== context.settings) {
    const channels = configuredChannels(context.settings);
    cached = {
      settings: context.settings,
      notify: channels.length > 0 ? fanOut(channels, { log, metrics }) : undefined,
    };
  }
  return cached.notify;
}
