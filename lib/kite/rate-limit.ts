// Kite allows 10 requests a second per API key. Every Kite client with the same key in a process takes its turn
// from one limiter, so the accounts of a family (one app, several users) stay within the limit together.

export interface RateLimiterOptions {
  /** Requests allowed in any window. Default 10, Kite's limit. */
  limit?: number;
  /** Default 1000 ms. */
  windowMs?: number;
}

/** A request's place in the window: held while it runs, and for a window after it finished. */
interface Slot {
  until: number;
}

/**
 * At most `limit` requests in any `windowMs`, as Kite counts them: on arrival. A request arrives at Kite some time
 * between asking here and getting its answer, so a slot is held while the request runs and for a whole window after
 * it finished; then no two requests `limit` apart can arrive within one window, however the network bunches them.
 * (A token bucket counts at the start only, and one that starts full lets a burst and a refill through together.)
 */
export class RateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  readonly #slots: Slot[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #released: (() => void) | undefined;

  constructor(options: RateLimiterOptions = {}) {
    this.limit = Math.max(1, Math.floor(options.limit ?? 10));
    this.windowMs = Math.max(1, options.windowMs ?? 1_000);
  }

  /** Resolves, first come first served, when a request may start; call the returned function once it finished. */
  take(): Promise<() => void> {
    const turn = this.#queue.then(() => this.#wait());
    this.#queue = turn;
    return turn;
  }

  async #wait(): Promise<() => void> {
    for (;;) {
      const now = performance.now();
      for (let i = this.#slots.length - 1; i >= 0; i--) {
        if ((this.#slots[i]?.until ?? 0) <= now) this.#slots.splice(i, 1);
      }
      if (this.#slots.length < this.limit) return this.#hold();
      const soonest = Math.min(...this.#slots.map((s) => s.until));
      await new Promise<void>((resolve) => {
        // Every slot still running: wait for one to finish; otherwise until the first one leaves the window.
        this.#released = resolve;
        if (Number.isFinite(soonest)) setTimeout(resolve, Math.max(1, Math.ceil(soonest - now)));
      });
      this.#released = undefined;
    }
  }

  #hold(): () => void {
    const slot: Slot = { until: Number.POSITIVE_INFINITY };
    this.#slots.push(slot);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      slot.until = performance.now() + this.windowMs;
      this.#released?.();
    };
  }
}

const byKey = new Map<string, RateLimiter>();

/** The process's limiter for an API key at an API root. */
export function limiterFor(apiKey: string, baseUrl: string): RateLimiter {
  const id = `${apiKey}\n${baseUrl}`;
  let limiter = byKey.get(id);
  if (!limiter) {
    limiter = new RateLimiter();
    byKey.set(id, limiter);
  }
  return limiter;
}
