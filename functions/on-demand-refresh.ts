// Invoked synchronously by trading Lambdas after Kite answered 401/403. A burst of calls after one flush makes
// one Kite renewal (the lease in the refresh engine); everyone gets the stored token back.
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { answerForAccount } from '../lib/accounts/on-demand.ts';
import { deadlineOf, lambdaContext, log, logger, metrics } from '../lib/lambda/context.ts';
import {
  answerOnDemand,
  invalidPayloadAnswer,
  loginLinkWith,
  type OnDemandResponse,
  outcomeMetric,
  parseOnDemandPayload,
} from '../lib/lambda/on-demand.ts';
import { InputError } from '../lib/shared/errors.ts';

export async function onDemandRefresh(
  event: unknown,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<OnDemandResponse> {
  let payload: ReturnType<typeof parseOnDemandPayload>;
  try {
    payload = parseOnDemandPayload(event);
  } catch (e: unknown) {
    if (!(e instanceof InputError)) throw e;
    log.warn('Rejected on-demand payload', { reason: e.message });
    return invalidPayloadAnswer(e);
  }
  const container = await lambdaContext();
  const { settings, accounts, appSecret } = container;
  if (accounts.single && payload.account === undefined) {
    const loginLink = loginLinkWith(appSecret, settings.stateScope);
    const answer = await answerOnDemand(container.refresher, payload, loginLink, deadlineOf(context));
    metrics.addMetric(outcomeMetric(answer), 'Count', 1);
    return answer;
  }
  const { answer, account } = await answerForAccount(accounts, payload, {
    appSecret,
    stateScope: settings.stateScope,
    deadline: deadlineOf(context),
  });
  metrics.addMetric(outcomeMetric(answer), 'Count', 1);
  if (account && !accounts.single) {
    const single = metrics.singleMetric();
    single.addDimension('Account', account.label);
    single.addMetric(outcomeMetric(answer), 'Count', 1);
  }
  return answer;
}

export const handler = middy(onDemandRefresh)
  // Never log the event, whatever POWERTOOLS_LOG_EVENT says: an on-demand payload carries a token.
  .use(injectLambdaContext(logger, { logEvent: false }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
