// Hourly EventBridge tick (hh:01 IST): refresh the token if due. Throws on failures so Lambda's Errors metric,
// retries and failure destination apply; a needed human login is reported and reminded, not retried.
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { AlertPublisher } from '../lib/lambda/alerts.ts';
import { loadAppSecret } from '../lib/lambda/app-secret.ts';
import { deadlineOf, lambdaContext, log, logger, metrics } from '../lib/lambda/context.ts';
import { remindByAlert, scheduledTick, type TickResult } from '../lib/lambda/scheduled-tick.ts';

let publisher: { topicArn: string; publish: AlertPublisher } | undefined;

export async function scheduledRefresh(
  _event?: unknown,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<TickResult> {
  const { settings, refresher } = await lambdaContext();
  const topicArn = settings.alertTopicArn;
  if (topicArn && publisher?.topicArn !== topicArn) {
    // The SNS client loads when a reminder is actually sent, not on every cold start.
    let publish: AlertPublisher | undefined;
    publisher = {
      topicArn,
      publish: async (subject, message) => {
        publish ??= (await import('../lib/lambda/alerts.ts')).snsPublisher(topicArn);
        await publish(subject, message);
      },
    };
  }
  const publish = publisher?.publish;
  const remind = publish
    ? remindByAlert({
        refresher,
        publish,
        appSecret: await loadAppSecret(),
        firstAtIst: settings.reminderFirstIst,
        followUpAtIst: settings.reminderFollowUpIst,
      })
    : undefined;
  return scheduledTick({ refresher, log, metrics, remind, deadline: deadlineOf(context) });
}

export const handler = middy(scheduledRefresh)
  .use(injectLambdaContext(logger, { logEvent: false }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
