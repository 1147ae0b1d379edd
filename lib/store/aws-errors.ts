// The one reading of an AWS SDK error for the S3 and Secrets Manager stores: its status, name and code, whether
// trying again may help, and a StoreError whose message names the operation and AWS's error code, never a body.
import { StoreError } from '../shared/errors.ts';

/** What a store branches on in an SDK error. */
export interface AwsErrorFacts {
  /** The SDK's error name: AWS's error code for a modeled error (NoSuchKey, ResourceNotFoundException). */
  name: string;
  /** HTTP status of AWS's answer; undefined when no answer came (network, timeout). */
  status: number | undefined;
  /** A Node errno (ECONNREFUSED) or an unmodeled error's Code. */
  code: string | undefined;
  fault: 'client' | 'server' | undefined;
  /** The SDK marked the error as throttling. */
  throttling: boolean;
}

const THROTTLING_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'ProvisionedThroughputExceededException',
  'EC2ThrottledException',
  'PriorRequestNotComplete',
]);
const TRANSIENT_NAMES = new Set([
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'AbortError',
  'OperationAborted',
]);
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
]);

function stringField(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function awsErrorFacts(e: unknown): AwsErrorFacts {
  if (typeof e !== 'object' || e === null) {
    return { name: String(e), status: undefined, code: undefined, fault: undefined, throttling: false };
  }
  const record = e as {
    name?: unknown;
    code?: unknown;
    Code?: unknown;
    $fault?: unknown;
    $metadata?: { httpStatusCode?: unknown };
    $retryable?: { throttling?: unknown };
  };
  const status = record.$metadata?.httpStatusCode;
  const fault = record.$fault;
  return {
    name: stringField(record.name) ?? 'Error',
    status: typeof status === 'number' ? status : undefined,
    code: stringField(record.code) ?? stringField(record.Code),
    fault: fault === 'client' || fault === 'server' ? fault : undefined,
    throttling: record.$retryable?.throttling === true,
  };
}

/** Throttling, server faults and failures that never got an HTTP answer (network, timeout) may pass on retry. */
export function isRetryableAws(f: AwsErrorFacts): boolean {
  if (f.throttling || THROTTLING_NAMES.has(f.name) || TRANSIENT_NAMES.has(f.name)) return true;
  if (f.status !== undefined) return f.fault === 'server' || f.status === 429 || f.status >= 500;
  // No HTTP answer at all: the request never reached AWS or the connection broke.
  return f.code !== undefined && NETWORK_CODES.has(f.code);
}

/** "NoSuchKey (HTTP 404)" or "ECONNREFUSED": enough to act on, and never a body or a token. */
export function describeAws(f: AwsErrorFacts): string {
  const what = f.code && f.name === 'Error' ? f.code : f.name;
  return f.status === undefined ? what : `${what} (HTTP ${f.status})`;
}

/**
 * "GetObject on s3://bucket/key failed: SlowDown (HTTP 503)". AWS's own message is left out: it comes from the
 * response body. The SDK error stays as `cause`.
 */
export function awsStoreError(operation: string, location: string, e: unknown): StoreError {
  const f = awsErrorFacts(e);
  return new StoreError(`${operation} on ${location} failed: ${describeAws(f)}`, {
    retryable: isRetryableAws(f),
    cause: e,
  });
}
