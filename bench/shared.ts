// What the bench and its server process share: where the document lives and the IPC protocol's types.
export const BUCKET = 'kite-token-bench';
export const KEY = 'broker-config.json';
export const CONFIG_SECRET = 'kite-token-bench/broker-config';
export const APP_SECRET_ID = 'kite-token-bench/kite-app';
export const API_KEY = 'benchapikey';
export const APP_SECRET = 'bench-app-secret';

export interface Endpoints {
  kite: string;
  s3: string;
  secretsManager: string;
  sns: string;
  topicArn: string;
}

/** AWS requests and Kite calls since the last `reset`. */
export interface Counts {
  /** "GET config", "PUT config", "GET rescue", … (method and which object). */
  s3: Record<string, number>;
  /** Secrets Manager operations by name. */
  secretsManager: Record<string, number>;
  snsPublishes: number;
  /** Kite sandbox requests by "METHOD /path". */
  kite: Record<string, number>;
  /** CPU time the server process spent (user + system), in ms. */
  cpuMs: number;
}

export type Request =
  | { op: 'endpoints' }
  /** Mints a Kite session and stores a broker-config.json holding it in S3 and/or Secrets Manager. */
  | { op: 'seed'; expired: boolean; stores: StoreKind[] }
  | { op: 'latency'; ms: number }
  /** Kite's 06:00 flush: every access token dies. */
  | { op: 'flush' }
  | { op: 'reset' }
  | { op: 'counts' }
  | { op: 'close' };

export interface SeedResult {
  accessToken: string;
  expiresAt: string;
}

export const CONFIG_URI = {
  s3: `s3://${BUCKET}/${KEY}`,
  secretsmanager: `secretsmanager://${CONFIG_SECRET}`,
};
export type StoreKind = keyof typeof CONFIG_URI;
