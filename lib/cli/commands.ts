// One function per kite-token command. Each gets its parsed options and the io, and returns an exit code; failures
// are thrown and turned into one line and an exit code by cli.ts.

import type { Account } from '../accounts/registry.ts';
import { formatIst } from '../engine/expiry.ts';
import { createRefresher } from '../engine/refresher.ts';
import { formatStatus, tokenStatus } from '../engine/status.ts';
import { type TokenVerdict, verifyStoredToken } from '../engine/verify.ts';
import { loadAppSecret } from '../lambda/app-secret.ts';
import { readCallback, START_AGAIN } from '../login/callback-query.ts';
import { exchangeRequestToken } from '../login/exchange.ts';
import { buildLoginLink, loginRootFor } from '../login/link.ts';
import { accountResolver } from '../login/login-account.ts';
import { LoginError, loginSummary } from '../login/outcome.ts';
import { describeError, InputError } from '../shared/errors.ts';
import { createConsoleLog, type Log } from '../shared/log.ts';
import { configLocation, openAccounts, pickAccount } from './accounts.ts';
import { EXIT } from './exit.ts';
import { describeFailure } from './failure.ts';
import type { CliIo } from './io.ts';
import { type AccountStatus, formatStatusRows } from './status-rows.ts';
import { printStatusUrl } from './status-url.ts';

export interface CommandOptions {
  config: string | undefined;
  force: boolean;
  requestToken: string | undefined;
  state: string | undefined;
  /** The whole address the browser ended on after the Kite login (exchange --url). */
  url: string | undefined;
  /** The deployment stage whose login callback takes the link (its LOGIN_STATE_SCOPE). */
  stage: string | undefined;
  /** The account (its name or user_id) when --config holds several. */
  account: string | undefined;
  /** status-url: the login callback's URL (--callback-url) and the link's lifetime (--hours). */
  callbackUrl?: string | undefined;
  hours?: string | undefined;
}

export type Command = (options: CommandOptions, io: CliIo) => Promise<number>;

/** Human-readable log lines on stderr, so stdout carries only a command's answer. */
function consoleLog(io: CliIo): Log {
  return createConsoleLog({ write: (line) => io.stderr(`${line}\n`) });
}

/**
 * The login state scope: --stage, else LOGIN_STATE_SCOPE, else none. It must be the deployment's, or the callback
 * refuses the link (and this command refuses the state of a link minted for another stage).
 */
function stateScope(options: CommandOptions): string | undefined {
  const scope = options.stage ?? process.env.LOGIN_STATE_SCOPE;
  if (!scope) return undefined;
  if (!/^[A-Za-z0-9._:/-]{1,128}$/.test(scope)) {
    throw new InputError('--stage (LOGIN_STATE_SCOPE) must be 1 to 128 letters, digits or . _ : / -');
  }
  return scope;
}

/** One document, as before accounts: the refresher's own log lines say what happened. */
async function refreshOne(options: CommandOptions, io: CliIo): Promise<number> {
  const log = consoleLog(io);
  const refresher = await createRefresher({
    configUri: configLocation(options.config),
    appSecret: await loadAppSecret(),
    log,
  });
  const outcome = await refresher.refresh({ force: options.force });
  if (outcome.status === 'login_required') {
    io.stderr('login required: no refresh token is configured; log in once today (kite-token login-url)\n');
    return EXIT.loginRequired;
  }
  if (outcome.status !== 'refreshed') {
    log.info('✅ Token is fresh', {
      expiresAt: outcome.expiresAt ? formatIst(outcome.expiresAt) : 'unknown',
    });
  }
  return EXIT.ok;
}

/** One account of several: a line on stdout, and the exit code it alone would give. */
async function refreshAccount(account: Account, force: boolean, io: CliIo): Promise<number> {
  try {
    const outcome = await account.refresher.refresh({ force });
    const expires =
      outcome.status === 'login_required' ? '' : ` (expires ${formatExpiry(outcome.expiresAt)})`;
    io.stdout(`${account.name} (${account.label}): ${outcome.status.replace('_', ' ')}${expires}\n`);
    return outcome.status === 'login_required' ? EXIT.loginRequired : EXIT.ok;
  } catch (e: unknown) {
    const { line, code } = describeFailure(e);
    io.stdout(`${account.name} (${account.label}): failed: ${line}\n`);
    return code === EXIT.loginRequired ? EXIT.loginRequired : EXIT.failed;
  }
}

const formatExpiry = (at: Date | undefined): string => (at ? formatIst(at) : 'unknown');

/**
 * With several accounts at --config: the one --account names, or every account in turn, each renewed only when
 * due. One account's failure does not stop the others; the exit code is the worst: 1 failed, 3 login required.
 */
const refresh: Command = async (options, io) => {
  const appSecret = await loadAppSecret();
  const accounts = openAccounts(options.config, appSecret, consoleLog(io));
  if (accounts.single && options.account === undefined) return refreshOne(options, io);
  const chosen =
    options.account === undefined
      ? await accounts.all()
      : [(await pickAccount(accounts, options.account)).account];
  const codes: number[] = [];
  for (const account of chosen) codes.push(await refreshAccount(account, options.force, io));
  if (codes.includes(EXIT.failed)) return EXIT.failed;
  return codes.includes(EXIT.loginRequired) ? EXIT.loginRequired : EXIT.ok;
};

/** How many documents status reads at once. */
const STATUS_READS = 8;

async function statusOf(account: Account): Promise<AccountStatus> {
  try {
    const { config } = await account.refresher.store.read();
    return { name: account.name, status: tokenStatus(config, account.refresher.store.location) };
  } catch (e: unknown) {
    return { name: account.name, error: describeError(e) };
  }
}

const status: Command = async (options, io) => {
  // Status reads documents only: it needs no app secret, and no Kite client is made.
  const accounts = openAccounts(options.config, '', consoleLog(io));
  if (accounts.single || options.account !== undefined) {
    const { account } = await pickAccount(accounts, options.account);
    const { config } = await account.refresher.store.read();
    io.stdout(`${formatStatus(tokenStatus(config, account.refresher.store.location)).join('\n')}\n`);
    return EXIT.ok;
  }
  const all = await accounts.all();
  const rows: AccountStatus[] = [];
  for (let i = 0; i < all.length; i += STATUS_READS) {
    rows.push(...(await Promise.all(all.slice(i, i + STATUS_READS).map(statusOf))));
  }
  io.stdout(`${formatStatusRows(rows).join('\n')}\n`);
  return rows.some((row) => 'error' in row) ? EXIT.failed : EXIT.ok;
};

const RENEW_OR_LOG_IN =
  'log in (kite-token login-url), or renew (kite-token refresh --force) if a refresh token is set';

/** A verdict as one line, and the exit code it gives: 0 valid, 3 dead (log in or renew), 1 Kite not reachable. */
function verdictLine(v: TokenVerdict): { line: string; code: number } {
  if (v.verdict === 'valid') return { line: `valid (Kite accepts the token of ${v.userId})`, code: EXIT.ok };
  if (v.verdict === 'dead')
    return { line: `dead: ${v.reason}; ${RENEW_OR_LOG_IN}`, code: EXIT.loginRequired };
  return {
    line: `unknown: Kite could not be asked, which says nothing about the token (${v.error})`,
    code: EXIT.failed,
  };
}

async function verifyAccount(account: Account, io: CliIo): Promise<number> {
  try {
    const { line, code } = verdictLine(await verifyStoredToken(account.refresher));
    io.stdout(`${account.name} (${account.label}): ${line}\n`);
    return code;
  } catch (e: unknown) {
    const { line } = describeFailure(e);
    io.stdout(`${account.name} (${account.label}): failed: ${line}\n`);
    return EXIT.failed;
  }
}

/**
 * Asks Kite (GET /user/profile) about the stored token. One account: the user id alone on stdout when Kite accepts
 * it, else a line on stderr. Several: a line each, and the worst exit code (1 before 3). Writes nothing.
 */
const verify: Command = async (options, io) => {
  const appSecret = await loadAppSecret();
  const accounts = openAccounts(options.config, appSecret, consoleLog(io));
  if (accounts.single || options.account !== undefined) {
    const { account } = await pickAccount(accounts, options.account);
    const verdict = await verifyStoredToken(account.refresher);
    if (verdict.verdict === 'valid') {
      io.stdout(`${verdict.userId}\n`);
      return EXIT.ok;
    }
    const { line, code } = verdictLine(verdict);
    io.stderr(`${line}\n`);
    return code;
  }
  const codes: number[] = [];
  for (const account of await accounts.all()) codes.push(await verifyAccount(account, io));
  if (codes.includes(EXIT.failed)) return EXIT.failed;
  return codes.includes(EXIT.loginRequired) ? EXIT.loginRequired : EXIT.ok;
};

const loginUrl: Command = async (options, io) => {
  const scope = stateScope(options);
  const appSecret = await loadAppSecret();
  const accounts = openAccounts(options.config, appSecret, consoleLog(io));
  const { account, named } = await pickAccount(accounts, options.account);
  const { config } = await account.refresher.store.read();
  const link = buildLoginLink({
    apiKey: config.api_key,
    appSecret,
    loginRoot: loginRootFor(config),
    scope,
    account: named ? account.name : undefined,
  });
  const who = `${config.user_id ? ` as ${config.user_id}` : ''}${named ? ` (account ${account.name})` : ''}`;
  // The link alone on stdout, so `open "$(kite-token login-url)"` works; the guidance goes to stderr.
  io.stdout(`${link}\n`);
  io.stderr(
    [
      `Open the link above and log in to Kite${who}; it works once, for 10 minutes.`,
      'Kite then sends the browser to the redirect URL registered for this app (api_key ' +
        `${config.api_key}) in the Kite developer console, https://developers.kite.trade/apps.`,
      "Register the login-callback function's URL there and the token is stored in that one step.",
      'Otherwise copy the whole address the browser ends on and, within a few minutes, run:',
      "  kite-token exchange --url '<that address>'",
      '',
    ].join('\n'),
  );
  return EXIT.ok;
};

const PASTE_AGAIN = 'paste the whole address the browser ended on after the Kite login';

/**
 * request_token and state from the address Kite's redirect left in the browser. Refuses an address that is not one,
 * carries no (or more than one) request_token, or reports a login that did not succeed; the messages never repeat
 * the address, since it holds the request token.
 */
export function fromRedirectAddress(address: string): { requestToken: string; state: string | undefined } {
  let query: URLSearchParams;
  try {
    // An address copied out of a page or a mail may carry its "&" HTML-escaped.
    query = new URL(address.trim().replaceAll('&amp;', '&')).searchParams;
  } catch (e: unknown) {
    throw new InputError(`--url is not a web address: ${PASTE_AGAIN}`, { cause: e });
  }
  // The callback's own reading of Kite's redirect, so the two never drift apart.
  try {
    return readCallback(query);
  } catch (e: unknown) {
    if (!(e instanceof LoginError)) throw e;
    if (e.code === 'cancelled') {
      const status = query.get('status') ?? '';
      const shown = /^[a-z_]{1,20}$/.test(status) ? ` (status=${status})` : '';
      throw new InputError(`--url is not from a successful Kite login${shown}: log in again`);
    }
    const why = e.message.replace(START_AGAIN, '').trim().replace(/\.$/, '');
    throw new InputError(`--url is not where a Kite login ended (${why}): ${PASTE_AGAIN}`);
  }
}

/** The request token and state from --url, or from --request-token and --state. */
function loginFrom(options: CommandOptions): { requestToken: string; state: string | undefined } {
  if (options.url !== undefined) {
    if (options.requestToken !== undefined || options.state !== undefined) {
      throw new InputError('exchange takes --url, or --request-token and --state, not both');
    }
    return fromRedirectAddress(options.url);
  }
  if (!options.requestToken) {
    throw new InputError('exchange needs --url (the address the login ended on) or --request-token');
  }
  return { requestToken: options.requestToken, state: options.state };
}

const exchange: Command = async (options, io) => {
  const { requestToken, state } = loginFrom(options);
  const scope = stateScope(options);
  const appSecret = await loadAppSecret();
  const log = consoleLog(io);
  const accounts = openAccounts(options.config, appSecret, log);
  // --account may be a user_id: the login is then for the account it names; a state names its account itself.
  const given =
    options.account === undefined ? undefined : (await pickAccount(accounts, options.account)).account.name;
  const result = await exchangeRequestToken({
    resolveAccount: accountResolver(accounts),
    account: given,
    appSecret,
    requestToken,
    state,
    stateScope: scope,
    // The person at the terminal holds the app secret and write access to the store, so could set user_id by hand:
    // a first login here may pin the account it was made with.
    allowFirstLoginPin: true,
    log,
  });
  io.stdout(`${loginSummary(result)}\n`);
  return EXIT.ok;
};

const statusUrl: Command = (options, io) =>
  printStatusUrl({ callbackUrl: options.callbackUrl, hours: options.hours, scope: stateScope(options) }, io);

const demo: Command = async (_options, io) => {
  // The demo and its Kite sandbox load only when asked for.
  const { runDemo } = await import('./demo.ts');
  return (await runDemo(io)) ? EXIT.ok : EXIT.failed;
};

export const COMMANDS: Readonly<Record<string, Command>> = {
  refresh,
  status,
  verify,
  'login-url': loginUrl,
  exchange,
  'status-url': statusUrl,
  demo,
};
