// Hourly EventBridge tick (hh:01 IST): refresh the token if due. Throws on failures so Lambda's Errors metric,
// retries and failure destination apply; a needed human login is reported and reminded, not retried.
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { deadlineOf, lambdaContext, log, logger, metrics } from '../lib/lambda/context.ts';
import { reminderFor, scheduledTick, type TickResult } from '../lib/lambda/scheduled-tick.ts';

export async function scheduledRefresh(
  _event?: unknown,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<TickResult> {
  const container = await lambdaContext();
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
