// The bench's loopback servers (Kite sandbox, S3, Secrets Manager, SNS) in a process of their own, driven over
// the fork IPC channel. Keeping them out of the measuring process means their request handling does not share an
// event loop with the handlers being timed, as real AWS and Kite do not share a Lambda container's CPU.
//
// Protocol: the parent sends { id, op, ...args }, this process answers { id, ok: true, result } or
// { id, ok: false, error }. See `Request` for the operations.

import { toIsoIst } from '../lib/engine/expiry.ts';
import { startKiteSandbox } from '../testing/kite-sandbox.ts';
import { startS3Emulator } from '../testing/s3-server.ts';
import { startSecretsManagerEmulator } from '../testing/secrets-manager-server.ts';
import { startSnsEmulator } from '../testing/sns-server.ts';
import {
  API_KEY,
  APP_SECRET,
  APP_SECRET_ID,
  BUCKET,
  CONFIG_SECRET,
  type Counts,
  type Endpoints,
  KEY,
  type Request,
  type SeedResult,
  type StoreKind,
} from './shared.ts';

const kite = await startKiteSandbox({ apiKey: API_KEY, apiSecret: APP_SECRET });
const s3 = await startS3Emulator({ buckets: [BUCKET] });
const sm = await startSecretsManagerEmulator();
const sns = await startSnsEmulator();
const topicArn = sns.createTopic('kite-token-bench-alerts');
sm.createSecret(APP_SECRET_ID, JSON.stringify({ api_secret: APP_SECRET }));
let snsBaseline = 0;
let cpuBaseline = process.cpuUsage();

function seed(expired: boolean, stores: StoreKind[]): SeedResult {
  const session = kite.mintSession({ expired });
  const config = {
    type: 'kite',
    api_key: API_KEY,
    api_secret: session.accessToken,
    refresh_token: session.refreshToken,
    base_url: kite.url,
    rate_limit: { requests_per_second: 10, burst_size: 20 },
    access_token_expires_at: toIsoIst(session.expiresAt),
    user_id: session.userId,
  };
  const text = `${JSON.stringify(config, null, 2)}\n`;
  if (stores.includes('s3')) s3.putObjectRaw(BUCKET, KEY, text, { contentType: 'application/json' });
  if (stores.includes('secretsmanager')) {
    // The emulator has no raw "put a new version": start it afresh with both secrets.
    sm.reset();
    sm.createSecret(APP_SECRET_ID, JSON.stringify({ api_secret: APP_SECRET }));
    sm.createSecret(CONFIG_SECRET, text);
  }
  return { accessToken: session.accessToken, expiresAt: config.access_token_expires_at };
}

function counts(): Counts {
  const s3Counts: Record<string, number> = {};
  for (const r of s3.requests) {
    const which = r.key === KEY ? 'config' : r.key === `${KEY}.rescue.json` ? 'rescue' : r.key || '(bucket)';
    const name = `${r.method} ${which}`;
    s3Counts[name] = (s3Counts[name] ?? 0) + 1;
  }
  const smCounts: Record<string, number> = {};
  for (const r of sm.requests) smCounts[r.operation] = (smCounts[r.operation] ?? 0) + 1;
  return {
    s3: s3Counts,
    secretsManager: smCounts,
    snsPublishes: sns.published.length - snsBaseline,
    kite: { ...kite.calls },
    cpuMs: (({ user, system }) => (user + system) / 1000)(process.cpuUsage(cpuBaseline)),
  };
}

async function handle(request: Request): Promise<unknown> {
  switch (request.op) {
    case 'endpoints':
      return {
        kite: kite.url,
        s3: s3.endpoint,
        secretsManager: sm.endpoint,
        sns: sns.endpoint,
        topicArn,
      } satisfies Endpoints;
    case 'seed':
      return seed(request.expired, request.stores);
    case 'latency':
      kite.setLatency(request.ms);
      return null;
    case 'flush':
      kite.flushAll();
      return null;
    case 'reset':
      s3.resetRequests();
      sm.resetRequests();
      snsBaseline = sns.published.length;
      kite.resetCalls();
      cpuBaseline = process.cpuUsage();
      return null;
    case 'counts':
      return counts();
    case 'close':
      await Promise.all([kite.close(), s3.close(), sm.close(), sns.close()]);
      return null;
  }
}

process.on('message', (message: { id: number } & Request) => {
  handle(message).then(
    (result) => {
      process.send?.({ id: message.id, ok: true, result });
      if (message.op === 'close') process.disconnect();
    },
    (e: unknown) =>
      process.send?.({ id: message.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});
process.send?.({ ready: true });
