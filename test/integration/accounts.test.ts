// Several accounts in one deployment, through the Lambda handlers, against the Kite sandbox and the S3, Secrets
// Manager and SNS test servers driven by the real SDK clients.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

import { handler as onDemandHandler } from '../../functions/on-demand-refresh.ts';
import { handler as scheduledHandler } from '../../functions/scheduled-refresh.ts';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { metrics, resetLambdaContext } from '../../lib/lambda/context.ts';
import { loginStateKey, verifyLoginState } from '../../lib/login/state.ts';
import type { OnDemandResponse } from '../../lib/shared/on-demand-response.ts';
import { type SnsEmulator, startSnsEmulator } from '../../testing/sns-server.ts';
import { startWebhookEmulator, type WebhookEmulator } from '../../testing/webhook-server.ts';
import {
  captureStdio,
  leakedTokens,
  type SandboxFixture,
  seedConfig,
  startSandbox,
} from '../support/fixtures.ts';
import { lambdaContextFor } from '../support/lambda-context.ts';
import { BUCKET, type CloudStores, endpointEnv, startCloud } from '../support/stores.ts';

const APP_SECRET = 'accounts-test-app-secret';
const NOW = new Date('2026-03-02T12:00:00+05:30');
const PREFIX = `s3://${BUCKET}/accounts/`;
const USERS = { alice: 'AL0001', bob: 'BO0002', carol: 'CA0003' } as const;
type Name = keyof typeof USERS;

let cloud: CloudStores;
let sns: SnsEmulator;
let hooks: WebhookEmulator;
let topicArn: string;
let kite: Record<Name, SandboxFixture>;
let output = '';
const saved = { ...process.env };

const context = (name: string) => lambdaContextFor(name);

const scheduled = () =>
  scheduledHandler({ source: 'aws.events', 'detail-type': 'Scheduled Event' }, context('scheduled'));
const onDemand = (event: unknown): Promise<OnDemandResponse> => onDemandHandler(event, context('on-demand'));
const renewals = (name: Name) => kite[name].sandbox.calls['POST /session/refresh_token'] ?? 0;
/** The account the signed state in a login link names (verified with the deployment's app secret). */
function stateAccount(link: string): string | undefined {
  const redirect = new URLSearchParams(new URL(link).searchParams.get('redirect_params') ?? '');
  const check = verifyLoginState(loginStateKey(APP_SECRET), redirect.get('state'));
  return check.ok ? check.account : undefined;
}
const text = (config: BrokerConfig) => `${JSON.stringify(config, null, 2)}\n`;

/** An account whose Kite user is its own sandbox's user. */
function accountConfig(name: Name, state: 'expired' | 'fresh', extra: Partial<BrokerConfig> = {}) {
  return seedConfig(kite[name].sandbox, state, { user_id: USERS[name], ...extra });
}

function seedPrefix(configs: Record<Name, BrokerConfig>): void {
  for (const [name, config] of Object.entries(configs)) {
    cloud.s3.putObjectRaw(BUCKET, `accounts/${name}.json`, text(config));
  }
}

const storedInPrefix = (name: Name): BrokerConfig =>
  JSON.parse(cloud.s3.getObject(BUCKET, `accounts/${name}.json`)?.body.toString('utf8') ?? '{}');

function useAccounts(uri: string, extra: Record<string, string> = {}): void {
  Object.assign(process.env, { BROKER_CONFIG_URI: uri, ...extra });
  resetLambdaContext();
}

beforeAll(async () => {
  cloud = await startCloud();
  sns = await startSnsEmulator();
  hooks = await startWebhookEmulator();
  topicArn = sns.createTopic('kite-token-alerts');
});

afterAll(async () => {
  await Promise.all([cloud.close(), sns.close(), hooks.close()]);
});

beforeEach(async () => {
  vi.setSystemTime(NOW);
  const [alice, bob, carol] = await Promise.all(
    (Object.values(USERS) as string[]).map((userId) => startSandbox({ apiSecret: APP_SECRET, userId })),
  );
  kite = { alice, bob, carol } as Record<Name, SandboxFixture>;
  cloud.sm.reset();
  cloud.sm.createSecret('kite-app', JSON.stringify({ api_secret: APP_SECRET }));
  for (const name of Object.keys(USERS)) cloud.s3.deleteObjectRaw(BUCKET, `accounts/${name}.json`);
  sns.published.length = 0;
  Object.assign(process.env, endpointEnv(cloud), {
    AWS_ENDPOINT_URL_SNS: sns.endpoint,
    KITE_API_SECRET_ID: 'kite-app',
  });
  delete process.env.ALERT_TOPIC_ARN;
  output = '';
  captureStdio((chunk) => {
    output += chunk;
  });
});

afterEach(async () => {
  for (const fx of Object.values(kite)) expect(leakedTokens(fx.sandbox, output)).toEqual([]);
  vi.restoreAllMocks();
  vi.useRealTimers();
  process.env = { ...saved };
  await Promise.all(Object.values(kite).map((fx) => fx.sandbox.close()));
});

describe('scheduled tick over several accounts', () => {
  it('renews the two healthy accounts when the third fails, throws, and a retry redoes only the failed one', async () => {
    const before = {
      alice: accountConfig('alice', 'expired'),
      bob: accountConfig('bob', 'expired'),
      carol: accountConfig('carol', 'expired'),
    };
    seedPrefix(before);
    // Stray objects under the prefix that are not accounts.
    cloud.s3.putObjectRaw(BUCKET, 'accounts/alice.json.rescue.json', '{}');
    cloud.s3.putObjectRaw(BUCKET, 'accounts/archive/old.json', '{}');
    kite.bob.sandbox.failNext({ times: 1, status: 400, errorType: 'InputException' });
    useAccounts(PREFIX);

    await expect(scheduled()).rejects.toMatchObject({ name: 'AccountsFailedError', failed: ['bob'] });

    expect([renewals('alice'), renewals('bob'), renewals('carol')]).toEqual([1, 1, 1]);
    expect(storedInPrefix('alice').api_secret).not.toBe(before.alice.api_secret);
    expect(storedInPrefix('carol').api_secret).not.toBe(before.carol.api_secret);
    expect(storedInPrefix('bob')).toEqual(before.bob);

    const retry = await scheduled();

    expect(retry).toMatchObject({ status: 'served' });
    expect([renewals('alice'), renewals('bob'), renewals('carol')]).toEqual([1, 2, 1]);
    expect(storedInPrefix('bob').api_secret).not.toBe(before.bob.api_secret);
  });

  it('serves a list of documents in a file, an S3 object and a secret, with a metric dimension per account', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kite-accounts-'));
    const alicePath = join(dir, 'alice.json');
    await writeFile(alicePath, text(accountConfig('alice', 'expired')), { mode: 0o600 });
    cloud.s3.putObjectRaw(BUCKET, 'accounts/bob.json', text(accountConfig('bob', 'fresh')));
    cloud.sm.createSecret('kite/carol', text(accountConfig('carol', 'expired')));
    useAccounts(`file://${alicePath}, s3://${BUCKET}/accounts/bob.json,secretsmanager://kite/carol`);
    const dimensions: string[] = [];
    const realSingle = metrics.singleMetric.bind(metrics);
    vi.spyOn(metrics, 'singleMetric').mockImplementation(() => {
      const single = realSingle();
      const add = single.addDimension.bind(single);
      vi.spyOn(single, 'addDimension').mockImplementation((name, value) => {
        dimensions.push(`${name}=${value}`);
        return add(name, value);
      });
      return single;
    });
    const addMetric = vi.spyOn(metrics, 'addMetric');

    const result = await scheduled();

    expect(result).toMatchObject({
      status: 'served',
      accounts: [
        { account: 'alice', status: 'refreshed' },
        { account: 'bob', status: 'fresh' },
        { account: 'carol', status: 'refreshed' },
      ],
    });
    expect([renewals('alice'), renewals('bob'), renewals('carol')]).toEqual([1, 0, 1]);
    const aliceNow = JSON.parse(await readFile(alicePath, 'utf8')) as BrokerConfig;
    expect(aliceNow.refreshed_at).toBeDefined();
    expect(dimensions).toEqual(
      expect.arrayContaining(['Account=AL0001', 'Account=BO0002', 'Account=CA0003']),
    );
    // The stack-level metrics the alarms watch are still there, once per account.
    expect(addMetric.mock.calls.filter((c) => c[0] === 'RefreshSucceeded')).toHaveLength(2);
    expect(output).toContain('"account":"AL0001"');
  });

  it('sends one reminder listing every account that needs a login, each with its own link', async () => {
    vi.setSystemTime(new Date('2026-03-03T08:01:00+05:30'));
    seedPrefix({
      alice: accountConfig('alice', 'expired', { refresh_token: '' }),
      bob: accountConfig('bob', 'fresh', { refresh_token: '' }),
      carol: accountConfig('carol', 'expired', { refresh_token: '' }),
    });
    useAccounts(PREFIX, { ALERT_TOPIC_ARN: topicArn });

    const result = await scheduled();

    expect(result).toMatchObject({
      accounts: [
        { account: 'alice', status: 'login_required', reminder: 'first' },
        { account: 'bob', status: 'fresh' },
        { account: 'carol', status: 'login_required', reminder: 'first' },
      ],
    });
    expect(sns.published).toHaveLength(1);
    const message = sns.published[0]?.message ?? '';
    expect(sns.published[0]?.subject).toBe('Kite login needed for 2 accounts');
    expect(message).toContain('Account alice (AL0001)');
    expect(message).toContain('Account carol (CA0003)');
    expect(message).not.toContain('Account bob');
    expect(message).toContain(`${kite.alice.sandbox.url}/connect/login?v=3`);
    expect(message).toContain(`${kite.carol.sandbox.url}/connect/login?v=3`);
    expect(storedInPrefix('alice')).toHaveProperty('login_reminder.sent', 1);
    const accountsInLinks = [...message.matchAll(/https?:\/\/\S+/g)].map(([link]) => stateAccount(link));
    expect(accountsInLinks.sort()).toEqual(['alice', 'carol']);

    await scheduled();
    expect(sns.published).toHaveLength(1);
  });
});

describe('reminders over several accounts on a webhook', () => {
  beforeEach(() => {
    hooks.reset();
    cloud.sm.createSecret(
      'kite-webhook',
      JSON.stringify({ url: `${hooks.url}/hook/accounts`, format: 'json' }),
    );
    vi.setSystemTime(new Date('2026-03-03T08:01:00+05:30'));
    seedPrefix({
      alice: accountConfig('alice', 'expired', { refresh_token: '' }),
      bob: accountConfig('bob', 'fresh', { refresh_token: '' }),
      carol: accountConfig('carol', 'expired', { refresh_token: '' }),
    });
  });

  it('sends one notice with a login button per account, each labelled with its account', async () => {
    useAccounts(PREFIX, { WEBHOOK_SECRET_ID: 'kite-webhook' });

    await scheduled();

    const posts = hooks.postsTo('/hook/accounts');
    expect(posts).toHaveLength(1);
    const body = posts[0]?.body as {
      event: string;
      accounts: string[];
      links: Array<{ label: string; url: string }>;
    };
    expect(body.event).toBe('login_needed');
    expect(body.accounts).toEqual(['alice', 'carol']);
    expect(body.links.map((l) => l.label)).toEqual(['Log in to Kite (alice)', 'Log in to Kite (carol)']);
    expect(body.links.map((l) => stateAccount(l.url))).toEqual(['alice', 'carol']);
  });

  it('gives every claim back when the only channel fails, and reminds on the next tick', async () => {
    useAccounts(PREFIX, { WEBHOOK_SECRET_ID: 'kite-webhook' });
    hooks.injectFault({ kind: 'not_found', times: 1 });

    await expect(scheduled()).rejects.toMatchObject({
      name: 'NotifyError',
      message: 'every notification channel failed: webhook (NotifyError: webhook answered 404 Not Found)',
    });
    expect(storedInPrefix('alice')).not.toHaveProperty('login_reminder');
    expect(storedInPrefix('carol')).not.toHaveProperty('login_reminder');

    await scheduled();
    expect(hooks.postsTo('/hook/accounts')).toHaveLength(1);
    expect(storedInPrefix('alice')).toHaveProperty('login_reminder.sent', 1);
  });
});

describe('on-demand refresh over several accounts', () => {
  beforeEach(() => {
    seedPrefix({
      alice: accountConfig('alice', 'expired'),
      bob: accountConfig('bob', 'expired'),
      carol: accountConfig('carol', 'fresh'),
    });
    useAccounts(PREFIX);
    cloud.s3.resetRequests();
  });

  it('refreshes the account named by its document name or its user_id', async () => {
    const byName = await onDemand({ account: 'alice' });
    const byUser = await onDemand({ account: 'BO0002' });

    expect(byName).toMatchObject({ status: 'refreshed', accessToken: storedInPrefix('alice').api_secret });
    expect(byUser).toMatchObject({ status: 'refreshed', accessToken: storedInPrefix('bob').api_secret });
    expect([renewals('alice'), renewals('bob'), renewals('carol')]).toEqual([1, 1, 0]);
  });

  it('finds the account by the access token the caller saw fail', async () => {
    const failed = storedInPrefix('bob').api_secret;

    const answer = await onDemand({ failedAccessToken: failed, status: 403 });

    expect(answer).toMatchObject({ status: 'refreshed', accessToken: storedInPrefix('bob').api_secret });
    expect([renewals('alice'), renewals('bob'), renewals('carol')]).toEqual([0, 1, 0]);
    // A caller still holding the replaced token gets the new one, without another renewal.
    expect(await onDemand({ failedAccessToken: failed })).toMatchObject({ status: 'already_fresh' });
    expect(renewals('bob')).toBe(1);
  });

  it('still finds the other accounts when one document cannot be read, and names no other document', async () => {
    cloud.s3.putObjectRaw(BUCKET, 'accounts/carol.json', '{"type": "kite", "api_key"');
    const failed = storedInPrefix('bob').api_secret;

    const found = await onDemand({ failedAccessToken: failed, status: 403 });
    const unknown = await onDemand({ failedAccessToken: 'nobody-holds-this-token-0000', status: 403 });

    expect(found).toMatchObject({ status: 'refreshed', accessToken: storedInPrefix('bob').api_secret });
    expect(unknown).toMatchObject({ status: 'error', error: { type: 'StoreUnavailable', retryable: true } });
    expect(JSON.stringify(unknown)).not.toContain('carol');
  });

  it('recognises a replaced token in another container, which never saw it, from the digest the document keeps', async () => {
    const failed = storedInPrefix('bob').api_secret;
    expect(await onDemand({ failedAccessToken: failed, status: 403 })).toMatchObject({ status: 'refreshed' });
    resetLambdaContext(); // a cold container: nothing remembered

    const answer = await onDemand({ failedAccessToken: failed, status: 403 });

    expect(answer).toMatchObject({ status: 'already_fresh', accessToken: storedInPrefix('bob').api_secret });
    expect(renewals('bob')).toBe(1);
    expect(JSON.stringify(storedInPrefix('bob'))).not.toContain(failed);
  });

  it('answers login_required with a login link that names the account, so the login lands in its document', async () => {
    seedPrefix({
      alice: accountConfig('alice', 'expired', { refresh_token: '' }),
      bob: accountConfig('bob', 'fresh'),
      carol: accountConfig('carol', 'fresh'),
    });
    useAccounts(PREFIX);

    const answer = await onDemand({ account: 'alice' });

    expect(answer).toMatchObject({ status: 'login_required' });
    expect(stateAccount('loginUrl' in answer ? (answer.loginUrl ?? '') : '')).toBe('alice');
  });

  it('answers UnknownAccount for an account nobody configured and touches nothing', async () => {
    const before = cloud.s3.requests.filter((r) => r.method === 'PUT').length;

    const answer = await onDemand({ account: 'mallory' });

    expect(answer).toEqual({
      status: 'error',
      error: { type: 'UnknownAccount', message: expect.any(String), retryable: false },
    });
    expect(cloud.s3.requests.filter((r) => r.method === 'PUT').length).toBe(before);
    expect([renewals('alice'), renewals('bob'), renewals('carol')]).toEqual([0, 0, 0]);
  });

  it('answers UnknownAccount for a token that matches no account, without naming the token', async () => {
    const stranger = 'tok_matches_no_account_0123456789';

    const answer = await onDemand({ failedAccessToken: stranger });

    expect(answer).toMatchObject({ status: 'error', error: { type: 'UnknownAccount', retryable: false } });
    expect(JSON.stringify(answer)).not.toContain(stranger);
    expect(output).not.toContain(stranger);
    expect(cloud.s3.requests.filter((r) => r.method === 'PUT')).toHaveLength(0);
  });

  it('makes one renewal per account for a storm of concurrent calls over three accounts', async () => {
    seedPrefix({
      alice: accountConfig('alice', 'expired'),
      bob: accountConfig('bob', 'expired'),
      carol: accountConfig('carol', 'expired'),
    });
    const tokens = (['alice', 'bob', 'carol'] as const).map((n) => storedInPrefix(n).api_secret);

    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i % 2 === 0
          ? onDemand({ failedAccessToken: tokens[i % 3] })
          : onDemand({ account: (['alice', 'bob', 'carol'] as const)[i % 3] }),
      ),
    );

    expect(answers.every((a) => a.status === 'refreshed' || a.status === 'already_fresh')).toBe(true);
    expect([renewals('alice'), renewals('bob'), renewals('carol')]).toEqual([1, 1, 1]);
  });
});
