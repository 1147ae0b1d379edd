// S3's error answers: an error carries S3's status, code, message and extra XML fields, and becomes the
// <Error> document S3 sends (no body for HEAD and 304).
import { randomBytes } from 'node:crypto';
import type { Answer, RequestContext } from './request.ts';

export class S3HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extra: Record<string, string>;
  readonly headers: Record<string, string>;
  constructor(
    status: number,
    code: string,
    message: string,
    extra: Record<string, string> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
    this.headers = headers;
  }
}

export const DEFAULT_MESSAGES: Record<string, string> = {
  AccessDenied: 'Access Denied',
  BadDigest: 'The Content-MD5 or checksum value that you specified did not match what the server received.',
  ConditionalRequestConflict:
    'A conflicting conditional operation is currently in progress against this resource. Please try again.',
  InternalError: 'We encountered an internal error. Please try again.',
  NoSuchBucket: 'The specified bucket does not exist',
  NoSuchKey: 'The specified key does not exist.',
  PreconditionFailed: 'At least one of the pre-conditions you specified did not hold',
  ServiceUnavailable: 'Service is unable to handle request.',
  SlowDown: 'Please reduce your request rate.',
};

export function noSuchKey(key: string): S3HttpError {
  return new S3HttpError(404, 'NoSuchKey', DEFAULT_MESSAGES.NoSuchKey ?? '', { Key: key });
}

export function noSuchBucket(bucket: string): S3HttpError {
  return new S3HttpError(404, 'NoSuchBucket', DEFAULT_MESSAGES.NoSuchBucket ?? '', { BucketName: bucket });
}

export function preconditionFailed(condition: string): S3HttpError {
  return new S3HttpError(412, 'PreconditionFailed', DEFAULT_MESSAGES.PreconditionFailed ?? '', {
    Condition: condition,
  });
}

export function notImplemented(
  message = 'A header you provided implies functionality that is not implemented',
  extra: Record<string, string> = {},
): S3HttpError {
  return new S3HttpError(501, 'NotImplemented', message, extra);
}

export function malformedTrailer(): S3HttpError {
  return new S3HttpError(
    400,
    'MalformedTrailerError',
    'The request contained trailing data that was not well-formed or did not conform to our published schema.',
  );
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function errorAnswer(ctx: Pick<RequestContext, 'method' | 'requestId'>, error: S3HttpError): Answer {
  const headers: Record<string, string> = { ...error.headers };
  if (error.status === 304 || ctx.method === 'HEAD') return { status: error.status, headers };
  const extra = Object.entries(error.extra)
    .map(([name, value]) => `<${name}>${xmlEscape(value)}</${name}>`)
    .join('');
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${xmlEscape(error.code)}</Code><Message>${xmlEscape(error.message)}</Message>${extra}` +
    `<RequestId>${ctx.requestId}</RequestId><HostId>${randomBytes(24).toString('base64')}</HostId></Error>`;
  headers['content-type'] = 'application/xml';
  return { status: error.status, headers, body: Buffer.from(xml, 'utf8') };
}
