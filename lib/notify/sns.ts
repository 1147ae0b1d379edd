// SNS: a notice as one Publish on the alert topic, which the deployment subscribes the alert e-mail to. E-mail and
// SMS show only the subject and the body, so the body already writes every link out; buttons add nothing here.
import { PublishCommand, SNSClient, type SNSClientConfig } from '@aws-sdk/client-sns';
import { type ClientOptions, lazyClient } from '../shared/lazy.ts';
import type { Notice } from './notice.ts';

/**
 * Publishes notices to an SNS topic, with a given client or one built from `clientConfig` on the first notice. The
 * SDK takes its endpoint from AWS_ENDPOINT_URL_SNS / AWS_ENDPOINT_URL when set.
 */
export function snsPublisher(
  topicArn: string,
  options: ClientOptions<SNSClient, SNSClientConfig> = {},
): (notice: Notice) => Promise<void> {
  const client = lazyClient(options, (config) => new SNSClient(config ?? {}));
  return async (notice) => {
    // SNS subjects are at most 100 characters, one line.
    const oneLine = notice.subject.replace(/[\r\n]+/g, ' ').slice(0, 100);
    await client().send(new PublishCommand({ TopicArn: topicArn, Subject: oneLine, Message: notice.body }));
  };
}
