// Hourly EventBridge tick (hh:01 IST): refresh every account's token if due. Throws on failures so Lambda's Errors
// metric, retries and failure destination apply; a needed human login is reported and reminded, not retried.
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { type AccountsTickResult, tickAccounts } from '../lib/accounts/tick.ts';
import { deadlineOf, lambdaContext, log, logger, metrics } from '../lib/lambda/context.ts';
import {
  accountRemindersFor,
  reminderFor,
  scheduledTick,
  type TickResult,
} from '../lib/lambda/scheduled-tick.ts';

export async function scheduledRefresh(
  _event?: unknown,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<TickResult | AccountsTickResult> {
  const container = await lambdaContext();
  if (!container.accounts.single) {
    return tickAccounts({
      accounts: container.accounts,
      log,
      metrics,
      concurrency: container.settings.accountConcurrency,
      remind: accountRemindersFor(container),
      deadline: deadlineOf(context),
    });
  }
  return scheduledTick({
    refresher: container.refresher,
    log,
    metrics,
    remind: reminderFor(container),
    deadline: deadlineOf(context),
  });
}

export const handler = middy(scheduledRefresh)
  .use(injectLambdaContext(logger, { logEvent: false }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
