// The container's notifier: every channel its settings configure, built once per cold start (channel code, clients
// and secrets load with the first notice). Reminders and the market-open check speak through it.
import { remindAccounts } from '../accounts/reminders.ts';
import type { AccountsTickDeps } from '../accounts/tick.ts';
import { buildStatusLink } from '../login/status-link.ts';
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

/** Mints a fresh status page link (12 h) for a morning message; undefined when STATUS_PAGE_URL is not set. */
export function statusLinkFor(context: LambdaContext): ((now: Date) => string) | undefined {
  const { settings, appSecret } = context;
  const page = settings.statusPageUrl;
  if (!page) return undefined;
  return (now) => buildStatusLink(page, { appSecret, scope: settings.stateScope, now });
}

/** The tick's reminder step: one notice for every account due, when any channel is configured. */
export function accountRemindersFor(context: LambdaContext): AccountsTickDeps['remind'] {
  const notify = notifierFor(context);
  if (!notify) return undefined;
  const { settings, appSecret } = context;
  return remindAccounts({
    notify,
    appSecret,
    stateScope: settings.stateScope,
    firstAtIst: settings.reminderFirstIst,
    followUpAtIst: settings.reminderFollowUpIst,
    calendar: settings.calendar,
    statusLink: statusLinkFor(context),
  });
}
