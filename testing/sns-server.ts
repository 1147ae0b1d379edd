// Amazon SNS's Publish on loopback, in the awsQuery protocol the SDK client speaks (form-encoded request, XML
// answer and XML errors), so alert tests run the real SNS client and can count and read what was published.
import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import { listenOnLoopback, readBody } from './loopback.ts';

export interface PublishedMessage {
  topicArn: string;
  subject: string | undefined;
  message: string;
  messageId: string;
}

export interface SnsEmulator {
  readonly endpoint: string;
  readonly published: PublishedMessage[];
  /** Creates a topic in the emulator; publishing to any other ARN answers NotFound. */
  createTopic(name: string): string;
  /** The next `times` Publish calls fail with this status and code (e.g. 500 InternalError, 400 Throttling). */
  injectFault(fault: { times: number; status: number; code: string }): void;
  close(): Promise<void>;
}

const NS = 'http://sns.amazonaws.com/doc/2010-03-31/';
const MAX_MESSAGE_BYTES = 256 * 1024;

function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sendXml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/xml', 'x-amzn-RequestId': randomUUID() });
  res.end(`<?xml version="1.0"?>\n${body}`);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const type = status >= 500 ? 'Receiver' : 'Sender';
  sendXml(
    res,
    status,
    `<ErrorResponse xmlns="${NS}"><Error><Type>${type}</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
  );
}

export async function startSnsEmulator(
  options: { port?: number; region?: string } = {},
): Promise<SnsEmulator> {
  const region = options.region ?? 'ap-south-1';
  const topics = new Set<string>();
  const published: PublishedMessage[] = [];
  const faults: Array<{ times: number; status: number; code: string }> = [];

  const server = createServer(async (req, res) => {
    if (req.method !== 'POST') return sendError(res, 405, 'InvalidAction', 'Only POST is supported');
    if (!req.headers.authorization)
      return sendError(res, 403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
    const params = new URLSearchParams((await readBody(req)).toString('utf8'));
    const action = params.get('Action');
    if (action !== 'Publish')
      return sendError(res, 400, 'InvalidAction', `Could not find operation ${action}`);
    const fault = faults[0];
    if (fault) {
      if (--fault.times <= 0) faults.shift();
      return sendError(res, fault.status, fault.code, 'Injected fault');
    }
    const topicArn = params.get('TopicArn') ?? '';
    const message = params.get('Message');
    if (!topicArn) return sendError(res, 400, 'InvalidParameter', 'Invalid parameter: TopicArn');
    if (message === null || message === '') {
      return sendError(res, 400, 'InvalidParameter', 'Invalid parameter: Empty message');
    }
    if (Buffer.byteLength(message) > MAX_MESSAGE_BYTES) {
      return sendError(res, 400, 'InvalidParameter', 'Invalid parameter: Message too long');
    }
    if (!topics.has(topicArn)) return sendError(res, 404, 'NotFound', 'Topic does not exist');
    const subject = params.get('Subject') ?? undefined;
    if (subject !== undefined && (subject.length > 100 || /[\r\n]/.test(subject))) {
      return sendError(res, 400, 'InvalidParameter', 'Invalid parameter: Subject');
    }
    const messageId = randomUUID();
    published.push({ topicArn, subject, message, messageId });
    sendXml(
      res,
      200,
      `<PublishResponse xmlns="${NS}"><PublishResult><MessageId>${messageId}</MessageId></PublishResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PublishResponse>`,
    );
  });
  const port = await listenOnLoopback(server, options.port);

  return {
    endpoint: `http://127.0.0.1:${port}`,
    published,
    createTopic(name) {
      const arn = `arn:aws:sns:${region}:000000000000:${name}`;
      topics.add(arn);
      return arn;
    },
    injectFault(fault) {
      faults.push({ ...fault });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
