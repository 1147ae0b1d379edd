// Retry policy for Kite calls: exponential backoff with full jitter, bounded by an attempt count and a total
// time budget, so a refresh that Kite keeps failing ends well before a Lambda timeout instead of at it.
import { backoffDelay, FULL_JITTER, sleep } from '../shared/backoff.ts';
import { certainlyNotActedOn, KiteApiError, KiteNetworkError } from '../shared/errors.ts';

export interface RetryOptions {
  /** Attempts in all, the first included. Default 4. */
  maxAttempts?: number;
  /** Cap of the first backoff; it doubles per retry. Default 200 ms. */
  baseDelayMs?: number;
  /** No single backoff exceeds this. Default 5000 ms. */
  maxDelayMs?: number;
  /** Wall-clock bound on all attempts and backoffs together. Default 20000 ms. */
  totalBudgetMs?: number;
}

export type RetryPolicy = Required<RetryOptions>;

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 4,
  baseDelayMs: 200,
  maxDelayMs: 5000,
  totalBudgetMs: 20_000,
});

function check(value: number, name: string, min: number): number {
  if (!Number.isFinite(value) || value < min)
    throw new RangeError(`retry.${name} must be a number >= ${min}`);
  return value;
}

/** Fills in defaults and rejects nonsense (negative delays, zero attempts) early, at construction. */
export function resolveRetryPolicy(options: RetryOptions = {}): RetryPolicy {
  return {
    maxAttempts: Math.floor(check(options.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts, 'maxAttempts', 1)),
    baseDelayMs: check(options.baseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs, 'baseDelayMs', 0),
    maxDelayMs: check(options.maxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs, 'maxDelayMs', 0),
    totalBudgetMs: check(options.totalBudgetMs ?? DEFAULT_RETRY_POLICY.totalBudgetMs, 'totalBudgetMs', 1),
  };
}

/**
 * The pause before retry `retry`: full jitter, uniform in [0, min(maxDelay, base * 2^(retry-1))). Spreading retries
 * over the whole window keeps several refreshers that failed together from hitting Kite's 10 req/s limit together.
 */
export function retryDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  return backoffDelay(
    retry,
    { baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs, jitter: FULL_JITTER },
    random,
  );
}

/** Only rate limiting, server-side failures and transport failures can succeed on a second try. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof KiteNetworkError) return true;
  if (error instanceof KiteApiError) return error.retryable;
  return false;
}

export interface AttemptContext {
  /** 1-based. */
  attempt: number;
  /** Time this attempt may take: the per-attempt timeout, shortened to what is left of the budget. */
  timeoutMs: number;
  /** What the previous attempt threw, if any; an earlier one Kite may have acted on wins over a later refusal. */
  previousError: unknown;
}

export interface RetryRuntime {
  /** Per-attempt timeout before budget clipping. */
  timeoutMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** A further condition on retrying an error worth retrying (e.g. only failures Kite certainly did not act on). */
  retryIf?: (error: unknown) => boolean;
}

function worthRetrying(error: unknown, attempt: number, policy: RetryPolicy, runtime: RetryRuntime): boolean {
  return isRetryable(error) && (runtime.retryIf?.(error) ?? true) && attempt < policy.maxAttempts;
}

/** An attempt Kite may have acted on stays the one reported: a later refused connection says nothing of it. */
function reportedError(earlier: unknown, latest: unknown): unknown {
  const keepEarlier = earlier !== undefined && !certainlyNotActedOn(earlier);
  return keepEarlier && certainlyNotActedOn(latest) ? earlier : latest;
}

/**
 * Runs `attempt` until it succeeds, throws something not worth retrying, runs out of attempts, or the next try
 * could not start inside the budget. Always rethrows the last error unchanged, so callers see Kite's answer.
 */
export async function withRetry<T>(
  attempt: (context: AttemptContext) => Promise<T>,
  policy: RetryPolicy,
  runtime: RetryRuntime,
): Promise<T> {
  const now = runtime.now ?? Date.now;
  const pause = runtime.sleep ?? sleep;
  const deadline = now() + policy.totalBudgetMs;
  let previousError: unknown;
  let lastError: unknown;
  for (let n = 1; ; n++) {
    const remaining = deadline - now();
    if (n > 1 && remaining <= 0) throw lastError;
    try {
      return await attempt({
        attempt: n,
        timeoutMs: Math.max(1, Math.min(runtime.timeoutMs, remaining)),
        previousError,
      });
    } catch (error: unknown) {
      if (!worthRetrying(error, n, policy, runtime)) throw error;
      const delay = retryDelay(n, policy, runtime.random);
      // Sleeping past the deadline would only postpone the same failure.
      if (now() + delay >= deadline) throw error;
      lastError = error;
      previousError = reportedError(previousError, error);
      await pause(delay);
    }
  }
}
