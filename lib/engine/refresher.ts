// Wires a config location, the Kite app secret and a logger into the refresh engine. The CLI, the demo and
// both Lambda functions go through here, so they run the same code path.

import { type KiteCallInfo, KiteClient } from '../kite/client.ts';
import type { Log } from '../shared/log.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { openStore } from '../store/open-store.ts';
import { apiRootFrom, type BrokerConfig } from './broker-config.ts';
import {
  type RefreshDeps,
  type RefreshOutcome,
  type RefreshRequest,
  refreshToken,
} from './refresh-engine.ts';

export interface RefresherSettings {
  /** Where broker-config.json lives: a path, file://, s3:// or secretsmanager:// location. */
  configUri: string;
  /** The Kite app secret (for checksums). */
  appSecret: string;
  log: Log;
  /** Called per Kite HTTP attempt (latency metrics). */
  onKiteCall?: (info: KiteCallInfo) => void;
  /** Engine tuning: window, lease and write-retry settings. */
  engine?: Omit<RefreshDeps, 'store' | 'kite' | 'log'>;
  /** Kite client tuning (timeouts, retries). */
  kite?: { timeoutMs?: number; retry?: ConstructorParameters<typeof KiteClient>[0]['retry'] };
  /** A store to use instead of opening configUri (tests, accounts). */
  store?: ConfigStore;
  /**
   * Kite clients by api_key and API root, shared by every refresher given the same map: the accounts of one
   * deployment that share an app share its clients. Default: a map of this refresher's own.
   */
  kiteClients?: Map<string, KiteClient>;
}

export interface Refresher {
  store: ConfigStore;
  refresh(request?: RefreshRequest): Promise<RefreshOutcome>;
  /** A Kite client for a config, e.g. for the login exchange. */
  kiteFor(config: BrokerConfig): KiteClient;
}

const announcedSubstitutions = new Set<string>();

export async function createRefresher(settings: RefresherSettings): Promise<Refresher> {
  const store = settings.store ?? (await openStore(settings.configUri));
  return refresherOn(store, settings);
}

/** A refresher over a store already open (or opening lazily). */
export function refresherOn(store: ConfigStore, settings: Omit<RefresherSettings, 'store'>): Refresher {
  const clients = settings.kiteClients ?? new Map<string, KiteClient>();
  const kiteFor = (config: BrokerConfig): KiteClient => {
    const root = apiRootFrom(config.base_url);
    if (root.substituted && config.base_url && !announcedSubstitutions.has(config.base_url)) {
      announcedSubstitutions.add(config.base_url);
      settings.log.info(
        `base_url ${config.base_url} is Kite's login site; calling the Kite API at ${root.url}`,
      );
    }
    const id = `${config.api_key}\n${root.url}`;
    let client = clients.get(id);
    if (!client) {
      client = new KiteClient({
        apiKey: config.api_key,
        apiSecret: settings.appSecret,
        baseUrl: root.url,
        ...(settings.kite?.timeoutMs ? { timeoutMs: settings.kite.timeoutMs } : {}),
        ...(settings.kite?.retry ? { retry: settings.kite.retry } : {}),
        ...(settings.onKiteCall ? { onCall: settings.onKiteCall } : {}),
      });
      clients.set(id, client);
    }
    return client;
  };
  // Concurrent identical requests in one process share one run: a burst of callers in a container costs one
  // read, one lease and at most one renewal instead of a race per caller. Across containers the lease decides.
  const inFlight = new Map<string, Promise<RefreshOutcome>>();
  const refresh = (request: RefreshRequest = {}): Promise<RefreshOutcome> => {
    // The deadline is left out of the key: callers that join a run share its time budget.
    const key = JSON.stringify([request.force === true, request.failedAccessToken ?? null]);
    let run = inFlight.get(key);
    if (!run) {
      run = refreshToken({ ...settings.engine, store, kite: kiteFor, log: settings.log }, request).finally(
        () => inFlight.delete(key),
      );
      inFlight.set(key, run);
    }
    return run;
  };
  return { store, kiteFor, refresh };
}
