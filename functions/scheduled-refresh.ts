// Hourly EventBridge tick (hh:01 IST): refresh every account's token if due, ask Kite about it in trading hours,
// run the morning ready check. Throws on failures so Lambda's Errors metric, retries and failure destination apply;
// a needed human login is reported and reminded, not retried.
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import {
  AccountsFailedError,
  type AccountsTickResult,
  type AccountTickResult,
  tickAccounts,
} from '../lib/accounts/tick.ts';
import { deadlineOf, lambdaContext, log, logger, metrics } from '../lib/lambda/context.ts';
import { accountRemindersFor, notifierFor, statusLinkFor } from '../lib/lambda/notifier.ts';

export async function scheduledRefresh(
  _event?: unknown,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<AccountTickResult | AccountsTickResult> {
  const container = await lambdaContext();
  const { settings } = container;
  const tick = tickAccounts({
    accounts: container.accounts,
    log,
    metrics,
    concurrency: settings.accountConcurrency,
    remind: accountRemindersFor(container),
    verification: { calendar: settings.calendar, readyCheckIst: settings.readyCheckIst },
    notify: notifierFor(container),
    notifyReady: settings.notifyReady,
    statusLink: statusLinkFor(container),
    deadline: deadlineOf(context),
  });
  if (!container.accounts.single) return tick;
  // One document answers, and fails, as it always has: its own result, its own error.
  try {
    const { accounts } = await tick;
    return accounts[0] ?? { account: '?' };
  } catch (e: unknown) {
    throw e instanceof AccountsFailedError && e.cause !== undefined ? e.cause : e;
  }
}

export const handler = middy(scheduledRefresh)
  .use(injectLambdaContext(logger, { logEvent: false }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
