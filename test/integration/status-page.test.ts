// The status page on the login callback's Function URL, against the S3 test server and the Kite sandbox: signed
// links only, no store read for a refused one, a row per account, and a fresh login link where only a login helps.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type BrokerConfig, tokenDigest } from '../../lib/engine/broker-config.ts';
import { withVerdict } from '../../lib/engine/verdict.ts';
import { logger, resetLambdaContext } from '../../lib/lambda/context.ts';
import { createLoginState, loginStateKey, verifyLoginState } from '../../lib/login/state.ts';
import { buildStatusLink, createStatusToken, statusLinkKey } from '../../lib/login/status-link.ts';
import { statusForbiddenPage } from '../../lib/login/status-page.ts';
import {
  captureStdio,
  leakedTokens,
  type SandboxFixture,
  seedConfig,
  startSandbox,
} from '../support/fixtures.ts';
import { buttonLinks, openOnCallback, STRICT_HEADERS } from '../support/function-url.ts';
import { BUCKET, type CloudStores, endpointEnv, startCloud } from '../support/stores.ts';

const CALLBACK = 'https://abc123.lambda-url.ap-south-1.on.aws/';
const PAGE = `${CALLBACK}status`;
const SCOPE = 'prod';
const NAMES = ['priya', 'ravi', 'sunil', 'tara', 'uma'];

let cloud: CloudStores;
let fx: SandboxFixture;
let output = '';
const saved = { ...process.env };
const stored: BrokerConfig[] = [];

beforeAll(async () => {
  cloud = await startCloud();
});

afterAll(async () => {
  await cloud.close();
});

function put(name: string, body: BrokerConfig | string): void {
  const text = typeof body === 'string' ? body : `${JSON.stringify(body, null, 2)}\n`;
  if (typeof body !== 'string') stored.push(body);
  cloud.s3.putObjectRaw(BUCKET, `accounts/${name}.json`, text);
}

beforeEach(async () => {
  // A trading morning before the open: a fresh token lives through it.
  vi.setSystemTime(new Date('2026-03-03T08:30:00+05:30'));
  fx = await startSandbox();
  stored.length = 0;
  const now = new Date();
  // priya: fresh, and Kite accepted this very token. ravi: a daily-login token past its expiry. sunil: fresh by the
  // clock, but Kite rejected it. tara: a document that is not JSON. uma: fresh, Kite not asked yet.
  put('priya', withVerdict(seedConfig(fx.sandbox, 'fresh', { user_id: 'CD5678' }), true, now));
  put('ravi', seedConfig(fx.sandbox, 'expired', { refresh_token: '', user_id: 'AB1234' }));
  put(
    'sunil',
    withVerdict(seedConfig(fx.sandbox, 'fresh', { refresh_token: '', user_id: 'EF9012' }), false, now),
  );
  put('tara', '{"type": "kite", not json');
  put('uma', seedConfig(fx.sandbox, 'fresh', { user_id: 'GH3456' }));
  Object.assign(process.env, endpointEnv(cloud), {
    BROKER_CONFIG_URI: NAMES.map((n) => `s3://${BUCKET}/accounts/${n}.json`).join(','),
    KITE_API_SECRET: fx.appSecret,
    LOGIN_STATE_SCOPE: SCOPE,
  });
  resetLambdaContext();
  cloud.s3.resetRequests();
  output = '';
  captureStdio((chunk) => {
    output += chunk;
  });
  logger.setLogLevel('DEBUG');
});

afterEach(async () => {
  expect(leakedTokens(fx.sandbox, output)).toEqual([]);
  logger.setLogLevel('SILENT');
  vi.restoreAllMocks();
  vi.useRealTimers();
  process.env = { ...saved };
  resetLambdaContext();
  await fx.sandbox.close();
});

const statusLink = (options: { now?: Date; scope?: string; appSecret?: string } = {}) =>
  buildStatusLink(PAGE, {
    appSecret: options.appSecret ?? fx.appSecret,
    scope: 'scope' in options ? options.scope : SCOPE,
    ...(options.now ? { now: options.now } : {}),
  });

/** The section of the page about one account. */
function section(body: string, name: string): string {
  const start = body.indexOf(`<h2>${name}`);
  expect(start).toBeGreaterThan(-1);
  const end = body.indexOf('</section>', start);
  return body.slice(start, end);
}

describe('the status page', () => {
  it('shows every account: mode, Kite’s verdict, expiry, last token and readiness, with strict headers', async () => {
    const page = await openOnCallback(statusLink());

    expect(page.statusCode).toBe(200);
    expect(page.headers).toMatchObject(STRICT_HEADERS);
    expect(page.headers['content-security-policy']).toMatch(
      /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/,
    );
    expect(page.body).not.toMatch(/<script|<form|\son[a-z]+=/i);

    const priya = section(page.body, 'priya');
    expect(priya).toContain('(CD5678)');
    expect(priya).toContain('auto-renew');
    expect(priya).toMatch(/Kite says<\/dt><dd>accepted at \d{4}-\d{2}-\d{2} /);
    expect(priya).toMatch(/Expires<\/dt><dd>\d{4}-\d{2}-\d{2} 06:00:00 IST \(in /);
    expect(priya).toContain('✅ ready');
    expect(priya).not.toContain('class="button"');

    const ravi = section(page.body, 'ravi');
    expect(ravi).toContain('daily login');
    expect(ravi).toContain('(expired)');
    expect(ravi).toContain('❌ not ready');
    expect(ravi).toContain('Kite says</dt><dd>not asked yet');
    expect(ravi).toContain('Log in with Kite');

    const sunil = section(page.body, 'sunil');
    expect(sunil).toContain('REJECTED at');
    expect(sunil).toContain('❌ not ready');
    expect(sunil).toContain('Log in with Kite');

    const tara = section(page.body, 'tara');
    expect(tara).toContain('is not a valid broker-config.json');
    expect(page.body).not.toMatch(/JSON|position|SyntaxError/);

    const uma = section(page.body, 'uma');
    expect(uma).toContain('unknown');
    expect(uma).toContain('has not been asked about this token yet');
    expect(uma).toContain('no ready check yet');
    expect(uma).not.toContain('class="button"');
  });

  it('gives each account that needs a login a fresh login link signed for this stage and naming that account', async () => {
    const page = await openOnCallback(statusLink());

    const links = buttonLinks(page.body);
    expect(links).toHaveLength(2);
    const accounts = links.map((link) => {
      const url = new URL(link);
      expect(url.href.startsWith(`${fx.sandbox.url}/connect/login?`)).toBe(true);
      const state = new URLSearchParams(url.searchParams.get('redirect_params') ?? '').get('state');
      expect(verifyLoginState(loginStateKey(fx.appSecret), state).ok).toBe(false);
      const check = verifyLoginState(loginStateKey(fx.appSecret, SCOPE), state);
      expect(check.ok).toBe(true);
      // A reminder's lifetime at most.
      if (check.ok)
        expect(check.expiresAt.getTime() - check.issuedAt.getTime()).toBeLessThanOrEqual(2 * 3_600_000);
      return check.ok ? check.account : undefined;
    });
    expect(accounts).toEqual(['ravi', 'sunil']);
    expect(section(page.body, 'ravi')).toContain('class="button"');
  });

  it('never shows a token or a token’s digest', async () => {
    const page = await openOnCallback(statusLink());

    expect(page.statusCode).toBe(200);
    expect(leakedTokens(fx.sandbox, page.body)).toEqual([]);
    for (const config of stored) {
      expect(page.body).not.toContain(config.api_secret);
      expect(page.body).not.toContain(tokenDigest(config.api_secret));
      expect(page.body).not.toContain(tokenDigest(config.api_secret).slice(0, 16));
    }
    expect(page.body).not.toContain(fx.appSecret);
  });

  it('reads each document once, and writes nothing', async () => {
    await openOnCallback(statusLink());

    const gets = cloud.s3.requests.filter((r) => r.method === 'GET').map((r) => r.key);
    expect(gets.sort()).toEqual(NAMES.map((n) => `accounts/${n}.json`));
    expect(cloud.s3.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it.each([
    ['a missing token', () => PAGE],
    ['an empty token', () => `${PAGE}?s=`],
    ['an expired token', () => statusLink({ now: new Date(Date.now() - 12 * 3_600_000 - 1000) })],
    [
      'a tampered token',
      () => {
        const url = new URL(statusLink());
        const token = url.searchParams.get('s') ?? '';
        const at = token.length - 5;
        url.searchParams.set(
          's',
          `${token.slice(0, at)}${token[at] === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`,
        );
        return url.href;
      },
    ],
    [
      'a token with a later expiry than it was signed with',
      () => {
        const url = new URL(statusLink());
        const [v, exp, mac] = (url.searchParams.get('s') ?? '').split('.');
        url.searchParams.set('s', `${v}.${Number(exp) + 3600}.${mac}`);
        return url.href;
      },
    ],
    ['a token for another stage', () => statusLink({ scope: 'dev' })],
    ['a token signed with another app secret', () => statusLink({ appSecret: 'another-secret' })],
    [
      'a login state in place of a status token',
      () => `${PAGE}?s=${createLoginState(loginStateKey(fx.appSecret, SCOPE), new Date(), 600_000, 'ravi')}`,
    ],
    [
      'the token given twice',
      () => `${statusLink()}&s=${createStatusToken(statusLinkKey(fx.appSecret, SCOPE))}`,
    ],
  ])('answers %s with 403, naming no account and reading no document', async (_what, link) => {
    const page = await openOnCallback(link());

    expect(page.statusCode).toBe(403);
    expect(page.headers).toMatchObject(STRICT_HEADERS);
    expect(page.body).toBe(statusForbiddenPage().body);
    for (const name of [...NAMES, 'CD5678', 'AB1234']) expect(page.body).not.toContain(name);
    expect(cloud.s3.requests).toEqual([]);
  });

  it('answers 405 to anything but GET, reading nothing', async () => {
    const page = await openOnCallback(statusLink(), 'POST');

    expect(page.statusCode).toBe(405);
    expect(cloud.s3.requests).toEqual([]);
  });
});
