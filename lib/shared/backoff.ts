// The one backoff-with-jitter rule: Kite retries, store write retries, S3's 409 resends, the file lock and waiting for
// another refresher's lease all pause through here. Jitter spreads callers that failed together, so they do not hit
// Kite's 10 req/s limit, or the same compare-and-swap, together again.
import { setTimeout as sleepFor } from 'node:timers/promises';

export interface BackoffOptions {
  /** The pause before the first retry, before jitter. */
  baseMs: number;
  /** No pause exceeds this, before jitter. */
  maxMs: number;
  /** Growth per retry. Default 2. */
  factor?: number;
  /**
   * The pause is drawn uniformly from [low, high) × the ceiling. Default [0, 1), "full jitter", which spreads best;
   * [0.5, 1) keeps a floor, [0.8, 1.2) stays near a known wait (a lease's expected end).
   */
  jitter?: readonly [low: number, high: number];
}

export const FULL_JITTER = [0, 1] as const;
export const EQUAL_JITTER = [0.5, 1] as const;

/** The pause before retry number `retry` (1-based): min(maxMs, baseMs × factor^(retry-1)) scaled by the jitter. */
export function backoffDelay(
  retry: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const factor = options.factor ?? 2;
  const ceiling = Math.min(options.maxMs, options.baseMs * factor ** Math.max(0, retry - 1));
  const [low, high] = options.jitter ?? FULL_JITTER;
  return Math.floor(ceiling * (low + random() * (high - low)));
}

/** A pause that tests can replace. */
export const sleep = (ms: number): Promise<void> => sleepFor(Math.max(0, ms));
