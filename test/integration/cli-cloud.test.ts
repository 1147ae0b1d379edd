import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../lib/cli/cli.ts';
import { leakedTokens, type SandboxFixture, seedConfig, startSandbox } from '../support/fixtures.ts';
import {
  type CloudStores,
  endpointEnv,
  locationOf,
  type StoreKind,
  seedCloud,
  startCloud,
  storeOn,
} from '../support/stores.ts';

let cloud: CloudStores;
let fx: SandboxFixture;
const saved = { ...process.env };

beforeAll(async () => {
  cloud = await startCloud();
});

afterAll(async () => {
  await cloud.close();
});

beforeEach(async () => {
  fx = await startSandbox();
  Object.assign(process.env, endpointEnv(cloud), { KITE_API_SECRET: fx.appSecret });
});

afterEach(async () => {
  process.env = { ...saved };
  await fx.sandbox.close();
});

async function cli(...argv: string[]) {
  let out = '';
  const code = await runCli(argv, { stdout: (t) => (out += t), stderr: (t) => (out += t) });
  return { code, out };
}

describe.each<StoreKind>(['s3', 'secretsmanager'])('kite-token with --config on %s', (kind) => {
  it('refreshes an expired token in place, through the standard AWS endpoint variables', async () => {
    const seeded = seedConfig(fx.sandbox, 'expired');
    seedCloud(cloud, kind, seeded);

    const run = await cli('refresh', '--config', locationOf(kind));

    expect(run.code).toBe(EXIT.ok);
    expect(run.out).toContain('✅ Token refreshed successfully');
    const stored = (await storeOn(cloud, kind).read()).config;
    expect(stored.api_secret).not.toBe(seeded.api_secret);
    expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
    expect(stored.strategy_id).toBe('momentum-7');
    expect(leakedTokens(fx.sandbox, run.out)).toEqual([]);
  });

  it('reports status without the token', async () => {
    seedCloud(cloud, kind, seedConfig(fx.sandbox, 'fresh'));
    const run = await cli('status', '--config', locationOf(kind));
    expect(run.code).toBe(EXIT.ok);
    expect(run.out).toContain(`Config:        ${locationOf(kind)}`);
    expect(leakedTokens(fx.sandbox, run.out)).toEqual([]);
  });

  it('exits 2 with one line when the stored document is malformed, and overwrites nothing', async () => {
    if (kind === 's3') cloud.s3.putObjectRaw('kite-config', 'prod/broker-config.json', '{"type":"kite",');
    else {
      cloud.sm.reset();
      cloud.sm.createSecret('kite-token-refresh/test/broker-config', '{"type":"kite",');
    }
    const run = await cli('refresh', '--config', locationOf(kind));
    expect(run.code).toBe(EXIT.badInput);
    expect(run.out).toMatch(/^bad input: .*not valid JSON/);
    const raw =
      kind === 's3'
        ? cloud.s3.getObject('kite-config', 'prod/broker-config.json')?.body.toString()
        : cloud.sm.currentValue('kite-token-refresh/test/broker-config');
    expect(raw).toBe('{"type":"kite",');
  });
});

describe('kite-token with a config location it cannot use', () => {
  it('exits 2 naming the option', async () => {
    const run = await cli('status', '--config', 's3://bucket-without-key');
    expect(run).toEqual({ code: EXIT.badInput, out: 'bad input: --config must look like s3://bucket/key\n' });
  });
});
