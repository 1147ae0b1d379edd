// Login links work once. A completed login records its state's nonce in the document (written with the token, in
// the same compare-and-swap), so no container anywhere accepts that link again; and each container counts a link's
// failed attempts, so one link cannot make the public callback call Kite without limit.
import type { BrokerConfig } from '../engine/broker-config.ts';
import { toIsoIst } from '../engine/expiry.ts';

/** The document field that lists the states already used for a login, until they would have expired anyway. */
export const USED_STATES_FIELD = 'login_states_used';
/** A day has one login, a busy one a few: older entries go first when there are more than this. */
const MAX_USED_STATES = 16;
/** After this many failed exchanges with one link, this container refuses it without reading the store or asking Kite. */
export const MAX_FAILED_ATTEMPTS = 3;
/** Bound on the per-container record; only states this service signed get into it. */
const MAX_TRACKED_STATES = 1_000;

/** A verified state, as much of it as single use needs. */
export interface SpentState {
  nonce: string;
  /** When the state expires anyway: its record is not needed after that. */
  expiresAt: Date;
}

export interface UsedStateEntry {
  nonce: string;
  /** ISO-8601 (+05:30): the state's own expiry. */
  until: string;
}

/** The recorded used states that have not expired at `now`; entries not in the expected shape are dropped. */
export function usedStates(config: BrokerConfig, now: Date): UsedStateEntry[] {
  const value = (config as Record<string, unknown>)[USED_STATES_FIELD];
  if (!Array.isArray(value)) return [];
  return value.filter((entry: unknown): entry is UsedStateEntry => {
    if (typeof entry !== 'object' || entry === null) return false;
    const { nonce, until } = entry as Record<string, unknown>;
    return typeof nonce === 'string' && typeof until === 'string' && Date.parse(until) > now.getTime();
  });
}

/** True when a login from this state was already stored. */
export function isStateUsed(config: BrokerConfig, nonce: string, now: Date): boolean {
  return usedStates(config, now).some((entry) => entry.nonce === nonce);
}

/** The document with `state` recorded as used, expired entries pruned and the list bounded. */
export function withStateUsed(config: BrokerConfig, state: SpentState, now: Date): BrokerConfig {
  const kept = usedStates(config, now).filter((entry) => entry.nonce !== state.nonce);
  const entries = [...kept, { nonce: state.nonce, until: toIsoIst(state.expiresAt) }].slice(-MAX_USED_STATES);
  return { ...config, [USED_STATES_FIELD]: entries } as BrokerConfig;
}

/** Why this container refuses a state before doing anything for it. */
export type AttemptRefusal = 'used' | 'too_many';

interface Attempts {
  failures: number;
  used: boolean;
  until: number;
}

/**
 * What one container knows about the states it has seen: which completed a login here and how often each failed.
 * In memory only: a cold container starts empty (the document still refuses a used state), so the cap on failed
 * attempts is per container; the login callback's reserved concurrency bounds how many containers there are.
 */
export class LoginAttempts {
  readonly #states = new Map<string, Attempts>();

  /** Whether to refuse `state` at once: it completed a login here, or failed MAX_FAILED_ATTEMPTS times. */
  refusal(nonce: string, now: Date): AttemptRefusal | undefined {
    const entry = this.#states.get(nonce);
    if (!entry || entry.until <= now.getTime()) return undefined;
    if (entry.used) return 'used';
    return entry.failures >= MAX_FAILED_ATTEMPTS ? 'too_many' : undefined;
  }

  failed(state: SpentState, now: Date): void {
    this.#entry(state, now).failures += 1;
  }

  used(state: SpentState, now: Date): void {
    this.#entry(state, now).used = true;
  }

  #entry(state: SpentState, now: Date): Attempts {
    const existing = this.#states.get(state.nonce);
    if (existing) return existing;
    this.#prune(now);
    const entry = { failures: 0, used: false, until: state.expiresAt.getTime() };
    this.#states.set(state.nonce, entry);
    return entry;
  }

  #prune(now: Date): void {
    for (const [nonce, entry] of this.#states) {
      if (entry.until <= now.getTime()) this.#states.delete(nonce);
    }
    // Oldest first: a Map iterates in insertion order.
    for (const nonce of this.#states.keys()) {
      if (this.#states.size < MAX_TRACKED_STATES) break;
      this.#states.delete(nonce);
    }
  }
}

/** The container's record, shared by every invocation it serves. */
export const containerAttempts = new LoginAttempts();
