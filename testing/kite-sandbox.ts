// A loopback stand-in for Kite Connect's session API and login page, answering with Kite's paths, bodies and errors,
// plus a control surface (failures, latency, hangs, revocation, the 06:00 IST flush) for tests and the local demo.
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { formatKiteLoginTime, nextExpiry } from '../lib/engine/expiry.ts';
import { loginUrl } from '../lib/kite/client.ts';
import { sandboxLoginPage } from './kite-login-page.ts';
import { listenOnLoopback, readBoundedBody } from './loopback.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_BODY_BYTES = 64 * 1024;
const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** The browser's side of the login: no X-Kite-Version, and failNext() without an endpoint leaves them alone. */
const LOGIN_ENDPOINTS: ReadonlySet<string> = new Set(['GET /connect/login', 'POST /connect/login/approve']);

export interface KiteSandboxOptions {
  apiKey: string;
  apiSecret: string;
  /** Default 'XX0000'. */
  userId?: string;
  /** Default 'Kite Sandbox'. */
  userName?: string;
  /** Default true. false behaves like an ordinary app: refresh_token is "" and renewal is impossible. */
  issueRefreshTokens?: boolean;
  /** 0 (default) picks a free port. */
  port?: number;
  /** The sandbox's clock, for token expiry. Default: the real clock. */
  now?: () => Date;
  /** Where GET /connect/login sends the browser. Can also be set later with setRedirectUrl(). */
  redirectUrl?: string;
  /**
   * true: GET /connect/login answers with a login page (app, user, a "Log in as" button, never a password) and only
   * the button's POST /connect/login/approve redirects, as a person sees Kite. Default false: GET /connect/login
   * redirects at once, for tests and the bench, which follow the login with fetch.
   */
  loginPage?: boolean;
  /** How long a request token can be exchanged. Default 5 minutes. */
  requestTokenTtlMs?: number;
  /**
   * Body of a successful POST /session/refresh_token: 'full' session object (default, as the JS client types it)
   * or 'minimal' {user_id, access_token, refresh_token} (what the Go and Java clients decode).
   */
  renewResponse?: 'full' | 'minimal';
  /**
   * Kite does not document whether renewing kills the previous access token. Default false: it lives until its own
   * 06:00 flush, as access tokens from a fresh login do. Set true to test code that must not rely on that.
   */
  renewRevokesOldAccessToken?: boolean;
  /**
   * Default true: a refresh token works once and renewal hands out its successor. This is the stricter reading;
   * code that survives it also survives a Kite that keeps the old one alive.
   */
  renewRevokesOldRefreshToken?: boolean;
}

export interface FailureSpec {
  /** e.g. 'POST /session/refresh_token'. Omitted: any API endpoint (not the login page). */
  endpoint?: string;
  times: number;
  status: number;
  /** Default NetworkException for 429 and 5xx, GeneralException otherwise. */
  errorType?: string;
  message?: string;
  /** Sent as text/html instead of a Kite JSON error body, like a load balancer's error page. */
  rawBody?: string;
}

export interface MintedSession {
  userId: string;
  accessToken: string;
  /** "" when the sandbox does not issue refresh tokens. */
  refreshToken: string;
  publicToken: string;
  loginTime: string;
  expiresAt: Date;
}

export interface KiteSandbox {
  /** API root, e.g. http://127.0.0.1:PORT. The login page is GET {url}/connect/login. */
  readonly url: string;
  readonly apiKey: string;
  readonly userId: string;
  /** Requests received, by "METHOD /path", failed and hung ones included. */
  readonly calls: Record<string, number>;
  /** When each request arrived (performance.now()), by "METHOD /path", in order; emptied by resetCalls. */
  readonly arrivals: { endpoint: string; at: number }[];
  resetCalls(): void;
  /** The login page URL for this sandbox, as loginUrl() builds it for Kite. */
  loginUrl(redirectParams?: Record<string, string>): string;
  setRedirectUrl(url: string): void;
  failNext(spec: FailureSpec): void;
  /** Delay added before every answer. */
  setLatency(ms: number): void;
  /** The next `times` requests to `endpoint` are read and never answered. */
  hang(endpoint: string, times: number): void;
  /**
   * The next `times` requests to `endpoint` are processed (a request token is used up, a refresh token rotated) but
   * the connection is cut before the answer: the "did it happen?" case a retry runs into.
   */
  dropNextResponse(endpoint: string, times: number): void;
  /** Every refresh token stops working (renew → 403 TokenException). */
  revokeRefreshTokens(): void;
  revokeAccessToken(token: string): void;
  /** Kills every access token: the 06:00 flush or a master logout. */
  flushAll(): void;
  /** Every secret value ever issued (request, access, refresh, public tokens, enctokens), for leak sweeps. */
  issuedTokens(): string[];
  isAccessTokenValid(token: string): boolean;
  /** Seeds a session without the login flow. `expired: true` gives one already past its 06:00 flush. */
  mintSession(options?: { expired?: boolean }): MintedSession;
  /** A fresh request token, as the login redirect would carry. */
  issueRequestToken(): string;
  close(): Promise<void>;
}

interface AccessEntry {
  expiresAt: number;
  revoked: boolean;
}

interface RefreshEntry {
  revoked: boolean;
  accessTokens: string[];
}

interface Rule<T> {
  endpoint: string | undefined;
  remaining: number;
  value: T;
}

type Params = URLSearchParams;

const MESSAGES = {
  tokenInvalid: 'Token is invalid or has expired.',
  badAccess: 'Incorrect `api_key` or `access_token`.',
  badChecksum: 'Invalid `checksum`.',
  // What Kite answers when api_key is missing, e.g. because the body was sent as JSON instead of a form.
  shortApiKey: '`api_key` should be minimum 6 characters in length.',
  badApiKey: 'Invalid `api_key`.',
  // Kite does not document its answer without the header (it once selected older API versions); this is ours.
  badVersion: 'Missing or unsupported `X-Kite-Version` header; send X-Kite-Version: 3.',
} as const;

function randomToken(): string {
  let token = '';
  for (let i = 0; i < 32; i++) token += TOKEN_ALPHABET[randomInt(TOKEN_ALPHABET.length)];
  return token;
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, errorType: string, message: string): void {
  sendJson(res, status, { status: 'error', message, data: null, error_type: errorType });
}

function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  type = 'text/plain; charset=utf-8',
): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function defaultMessage(status: number): string {
  if (status === 429) return 'Too many requests';
  if (status === 503) return 'Service unavailable';
  if (status === 502) return 'Bad gateway';
  if (status === 504) return 'Gateway timeout';
  return 'Something went wrong';
}

function takeRule<T>(rules: Rule<T>[], endpoint: string, isApi: boolean): T | undefined {
  const index = rules.findIndex((rule) => (rule.endpoint === undefined ? isApi : rule.endpoint === endpoint));
  const rule = rules[index];
  if (!rule) return undefined;
  rule.remaining -= 1;
  if (rule.remaining <= 0) rules.splice(index, 1);
  return rule.value;
}

export async function startKiteSandbox(options: KiteSandboxOptions): Promise<KiteSandbox> {
  if (options.apiKey.length < 6)
    throw new RangeError('sandbox apiKey must be at least 6 characters, as Kite requires');
  if (!options.apiSecret) throw new RangeError('sandbox apiSecret is required');
  const apiKey = options.apiKey;
  const apiSecret = options.apiSecret;
  const userId = options.userId ?? 'XX0000';
  const userName = options.userName ?? 'Kite Sandbox';
  const issueRefreshTokens = options.issueRefreshTokens ?? true;
  const now = options.now ?? (() => new Date());
  const requestTokenTtlMs = options.requestTokenTtlMs ?? 5 * 60 * 1000;
  const renewResponse = options.renewResponse ?? 'full';
  const renewRevokesOldAccessToken = options.renewRevokesOldAccessToken ?? false;
  const renewRevokesOldRefreshToken = options.renewRevokesOldRefreshToken ?? true;
  let redirectUrl = options.redirectUrl;
  const loginPage = options.loginPage ?? false;

  const requestTokens = new Map<string, { issuedAt: number; used: boolean }>();
  const accessTokens = new Map<string, AccessEntry>();
  const refreshTokens = new Map<string, RefreshEntry>();
  const issued: string[] = [];
  const calls: Record<string, number> = {};
  const arrivals: { endpoint: string; at: number }[] = [];
  const failures: Rule<FailureSpec>[] = [];
  const hangs: Rule<true>[] = [];
  const drops: Rule<true>[] = [];
  let latencyMs = 0;

  const tokenLog = process.env.KITE_SANDBOX_TOKEN_LOG;
  const mint = (): string => {
    const token = randomToken();
    issued.push(token);
    // CI's leak sweep: every token any sandbox issued, to search the whole test output for.
    if (tokenLog) appendFileSync(tokenLog, `${token}\n`, { mode: 0o600 });
    return token;
  };

  const issueRequestToken = (): string => {
    const token = mint();
    requestTokens.set(token, { issuedAt: now().getTime(), used: false });
    return token;
  };

  const newSession = (issuedAt: Date, withRefresh: boolean) => {
    const accessToken = mint();
    const publicToken = mint();
    const enctoken = mint();
    const expiresAt = nextExpiry(issuedAt);
    accessTokens.set(accessToken, { expiresAt: expiresAt.getTime(), revoked: false });
    let refreshToken = '';
    if (withRefresh && issueRefreshTokens) {
      refreshToken = mint();
      refreshTokens.set(refreshToken, { revoked: false, accessTokens: [accessToken] });
    }
    return {
      accessToken,
      publicToken,
      enctoken,
      refreshToken,
      loginTime: formatKiteLoginTime(issuedAt),
      expiresAt,
    };
  };

  const sessionBody = (s: ReturnType<typeof newSession>) => ({
    user_type: 'individual',
    email: 'sandbox@example.invalid',
    user_name: userName,
    user_shortname: userName.split(' ')[0] ?? userName,
    broker: 'ZERODHA',
    exchanges: ['NSE', 'NFO', 'BFO', 'CDS', 'BSE', 'MCX', 'BCD', 'MF'],
    products: ['CNC', 'NRML', 'MIS', 'BO', 'CO'],
    order_types: ['MARKET', 'LIMIT', 'SL', 'SL-M'],
    avatar_url: null,
    user_id: userId,
    api_key: apiKey,
    access_token: s.accessToken,
    public_token: s.publicToken,
    enctoken: s.enctoken,
    refresh_token: s.refreshToken,
    silo: '',
    login_time: s.loginTime,
    meta: { demat_consent: 'physical' },
  });

  const isAccessTokenValid = (token: string): boolean => {
    const entry = accessTokens.get(token);
    return entry !== undefined && !entry.revoked && now().getTime() < entry.expiresAt;
  };

  /** Shared checks of the two checksum-signed POSTs. Returns the token when the request may proceed. */
  const checkSigned = (res: ServerResponse, params: Params, tokenField: string): string | undefined => {
    const key = params.get('api_key') ?? '';
    if (key.length < 6) return void sendError(res, 400, 'InputException', MESSAGES.shortApiKey);
    if (key !== apiKey) return void sendError(res, 400, 'InputException', MESSAGES.badApiKey);
    const token = params.get(tokenField) ?? '';
    const expected = createHash('sha256')
      .update(apiKey + token + apiSecret)
      .digest('hex');
    if (!sameText(params.get('checksum') ?? '', expected)) {
      return void sendError(res, 400, 'InputException', MESSAGES.badChecksum);
    }
    return token;
  };

  const generateSession = (res: ServerResponse, params: Params) => {
    const token = checkSigned(res, params, 'request_token');
    if (token === undefined) return;
    const entry = requestTokens.get(token);
    if (!entry || entry.used || now().getTime() - entry.issuedAt > requestTokenTtlMs) {
      return sendError(res, 403, 'TokenException', MESSAGES.tokenInvalid);
    }
    entry.used = true;
    sendJson(res, 200, { status: 'success', data: sessionBody(newSession(now(), true)) });
  };

  const renew = (res: ServerResponse, params: Params) => {
    const token = checkSigned(res, params, 'refresh_token');
    if (token === undefined) return;
    const entry = refreshTokens.get(token);
    if (!entry || entry.revoked) return sendError(res, 403, 'TokenException', MESSAGES.tokenInvalid);
    if (renewRevokesOldRefreshToken) entry.revoked = true;
    if (renewRevokesOldAccessToken) {
      for (const access of entry.accessTokens) {
        const old = accessTokens.get(access);
        if (old) old.revoked = true;
      }
    }
    const session = newSession(now(), true);
    if (!renewRevokesOldRefreshToken) {
      entry.accessTokens.push(session.accessToken);
    }
    const data =
      renewResponse === 'minimal'
        ? { user_id: userId, access_token: session.accessToken, refresh_token: session.refreshToken }
        : sessionBody(session);
    sendJson(res, 200, { status: 'success', data });
  };

  const profile = (req: IncomingMessage, res: ServerResponse) => {
    const match = /^token ([^:\s]+):(\S+)$/.exec(req.headers.authorization ?? '');
    if (!match || match[1] !== apiKey || !isAccessTokenValid(match[2] ?? '')) {
      return sendError(res, 403, 'TokenException', MESSAGES.badAccess);
    }
    sendJson(res, 200, {
      status: 'success',
      data: {
        user_id: userId,
        user_type: 'individual',
        email: 'sandbox@example.invalid',
        user_name: userName,
        user_shortname: userName.split(' ')[0] ?? userName,
        broker: 'ZERODHA',
        exchanges: ['BFO', 'MCX', 'NSE', 'CDS', 'BSE', 'BCD', 'MF', 'NFO'],
        products: ['CNC', 'NRML', 'MIS', 'BO', 'CO'],
        order_types: ['MARKET', 'LIMIT', 'SL', 'SL-M'],
        avatar_url: null,
        meta: { demat_consent: 'physical' },
      },
    });
  };

  // Logging out an unknown or dead token succeeds: logout is idempotent here (Kite does not document this case).
  const logout = (res: ServerResponse, params: Params) => {
    const key = params.get('api_key') ?? '';
    if (key.length < 6) return sendError(res, 400, 'InputException', MESSAGES.shortApiKey);
    if (key !== apiKey) return sendError(res, 400, 'InputException', MESSAGES.badApiKey);
    const access = params.get('access_token');
    const refresh = params.get('refresh_token');
    if (!access && !refresh) {
      return sendError(res, 400, 'InputException', 'Missing `access_token` or `refresh_token`.');
    }
    if (access) {
      const entry = accessTokens.get(access);
      if (entry) entry.revoked = true;
    }
    if (refresh) {
      const entry = refreshTokens.get(refresh);
      if (entry) entry.revoked = true;
    }
    sendJson(res, 200, { status: 'success', data: true });
  };

  /** Why the login page cannot be served for this query, or undefined. */
  const loginRefusal = (url: URL): string | undefined => {
    if (url.searchParams.get('api_key') !== apiKey) return 'Invalid api_key.';
    if (url.searchParams.get('v') !== '3') return 'This login flow expects v=3.';
    if (!redirectUrl) return 'No redirect URL is registered for this app.';
    return undefined;
  };

  /** What Kite does once the person has logged in: back to the redirect URL with a fresh request token. */
  const redirectToApp = (url: URL, res: ServerResponse, target: URL) => {
    target.searchParams.append('action', 'login');
    target.searchParams.append('type', 'login');
    target.searchParams.append('status', 'success');
    target.searchParams.append('request_token', issueRequestToken());
    for (const [name, value] of new URLSearchParams(url.searchParams.get('redirect_params') ?? '')) {
      target.searchParams.append(name, value);
    }
    if (res.destroyed) return;
    res.writeHead(302, { Location: target.href, 'Content-Length': 0, 'Referrer-Policy': 'no-referrer' });
    res.end();
  };

  const login = (url: URL, res: ServerResponse, approved: boolean) => {
    const refusal = loginRefusal(url);
    if (refusal || !redirectUrl) return sendText(res, 400, refusal ?? '');
    if (approved || !loginPage) return redirectToApp(url, res, new URL(redirectUrl));
    const page = sandboxLoginPage({
      apiKey,
      userId,
      userName,
      approvePath: `/connect/login/approve${url.search}`,
      redirectUrl,
    });
    if (res.destroyed) return;
    res.writeHead(200, { ...page.headers, 'Content-Length': Buffer.byteLength(page.body) });
    res.end(page.body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    const method = req.method ?? 'GET';
    const endpoint = `${method} ${url.pathname}`;
    const isApi = !LOGIN_ENDPOINTS.has(endpoint);
    calls[endpoint] = (calls[endpoint] ?? 0) + 1;
    arrivals.push({ endpoint, at: performance.now() });

    const body = (await readBoundedBody(req, MAX_BODY_BYTES))?.toString('utf8') ?? null;
    if (takeRule(hangs, endpoint, isApi)) return;
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    if (body === null) return sendError(res, 413, 'InputException', 'Request body too large.');

    const failure = takeRule(failures, endpoint, isApi);
    if (failure) {
      if (failure.rawBody !== undefined) return sendText(res, failure.status, failure.rawBody, 'text/html');
      const errorType =
        failure.errorType ??
        (failure.status === 429 || failure.status >= 500 ? 'NetworkException' : 'GeneralException');
      return sendError(res, failure.status, errorType, failure.message ?? defaultMessage(failure.status));
    }

    // With the socket gone every send below is a no-op, while the state change still happens.
    if (takeRule(drops, endpoint, isApi)) res.destroy();
    if (!isApi) return login(url, res, endpoint === 'POST /connect/login/approve');
    if (req.headers['x-kite-version'] !== '3')
      return sendError(res, 400, 'InputException', MESSAGES.badVersion);

    // Kite reads parameters from a form body only; a JSON body leaves them all missing.
    const isForm = (req.headers['content-type'] ?? '')
      .toLowerCase()
      .startsWith('application/x-www-form-urlencoded');
    const form = new URLSearchParams(isForm ? body : '');
    switch (endpoint) {
      case 'POST /session/token':
        return generateSession(res, form);
      case 'POST /session/refresh_token':
        return renew(res, form);
      case 'GET /user/profile':
        return profile(req, res);
      case 'DELETE /session/token': {
        // The official clients send DELETE parameters in the query string; accept a form body too.
        const params = new URLSearchParams(url.searchParams);
        for (const [name, value] of form) params.append(name, value);
        return logout(res, params);
      }
      default:
        return sendError(res, 404, 'GeneralException', 'Route not found');
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => sendError(res, 500, 'GeneralException', 'Sandbox failure'));
  });
  const port = await listenOnLoopback(server, options.port);
  const url = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;

  return {
    url,
    apiKey,
    userId,
    calls,
    arrivals,
    resetCalls() {
      for (const key of Object.keys(calls)) delete calls[key];
      arrivals.length = 0;
    },
    loginUrl: (redirectParams) => loginUrl(apiKey, redirectParams, url),
    setRedirectUrl(next) {
      redirectUrl = new URL(next).href;
    },
    failNext(spec) {
      if (spec.times > 0)
        failures.push({ endpoint: spec.endpoint, remaining: spec.times, value: { ...spec } });
    },
    setLatency(ms) {
      latencyMs = Math.max(0, ms);
    },
    hang(endpoint, times) {
      if (times > 0) hangs.push({ endpoint, remaining: times, value: true });
    },
    dropNextResponse(endpoint, times) {
      if (times > 0) drops.push({ endpoint, remaining: times, value: true });
    },
    revokeRefreshTokens() {
      for (const entry of refreshTokens.values()) entry.revoked = true;
    },
    revokeAccessToken(token) {
      const entry = accessTokens.get(token);
      if (entry) entry.revoked = true;
    },
    flushAll() {
      for (const entry of accessTokens.values()) entry.revoked = true;
    },
    issuedTokens: () => [...issued],
    isAccessTokenValid,
    mintSession(mintOptions) {
      const at = now();
      // A day and a minute back, the following 06:00 IST has certainly passed.
      const issuedAt = mintOptions?.expired ? new Date(at.getTime() - DAY_MS - 60_000) : at;
      const s = newSession(issuedAt, true);
      return {
        userId,
        accessToken: s.accessToken,
        refreshToken: s.refreshToken,
        publicToken: s.publicToken,
        loginTime: s.loginTime,
        expiresAt: s.expiresAt,
      };
    },
    issueRequestToken,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
