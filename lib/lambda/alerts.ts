// Alerts to people: a message on the SNS topic that the deployment subscribes the alert e-mail to.
import { PublishCommand, SNSClient, type SNSClientConfig } from '@aws-sdk/client-sns';
import { type ClientOptions, lazyClient } from '../shared/lazy.ts';

export type AlertPublisher = (subject: string, message: string) => Promise<void>;

/**
 * Publishes to an SNS topic, with a given client or one built from `clientConfig` on the first alert. The SDK takes
 * its endpoint from AWS_ENDPOINT_URL_SNS / AWS_ENDPOINT_URL when set.
 */
export function snsPublisher(
  topicArn: string,
  options: ClientOptions<SNSClient, SNSClientConfig> = {},
): AlertPublisher {
  const client = lazyClient(options, (config) => new SNSClient(config ?? {}));
  return async (subject, message) => {
    // SNS subjects are at most 100 characters, one line.
    const oneLine = subject.replace(/[\r\n]+/g, ' ').slice(0, 100);
    await client().send(new PublishCommand({ TopicArn: topicArn, Subject: oneLine, Message: message }));
  };
}
