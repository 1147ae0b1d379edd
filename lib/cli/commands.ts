// One function per kite-token command. Each gets its parsed options and the io, and returns an exit code; failures
// are thrown and turned into one line and an exit code by cli.ts.
import { formatIst } from '../engine/expiry.ts';
import { createRefresher } from '../engine/refresher.ts';
import { formatStatus, tokenStatus } from '../engine/status.ts';
import { loadAppSecret } from '../lambda/app-secret.ts';
import { exchangeRequestToken } from '../login/exchange.ts';
import { buildLoginLink, loginRootFor } from '../login/link.ts';
import { loginSummary } from '../login/outcome.ts';
import { InputError } from '../shared/errors.ts';
import { createConsoleLog, type Log } from '../shared/log.ts';
import { openStore } from '../store/open-store.ts';
import { EXIT } from './exit.ts';
import type { CliIo } from './io.ts';

export interface CommandOptions {
  config: string | undefined;
  force: boolean;
  requestToken: string | undefined;
  state: string | undefined;
  /** The deployment stage whose login callback takes the link (its LOGIN_STATE_SCOPE). */
  stage: string | undefined;
}

export type Command = (options: CommandOptions, io: CliIo) => Promise<number>;

function configLocation(flag: string | undefined): string {
  return flag ?? process.env.BROKER_CONFIG_URI ?? './broker-config.json';
}

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

async function readConfig(flag: string | undefined) {
  const store = await openStore(configLocation(flag), '--config');
  return { store, ...(await store.read()) };
}

const refresh: Command = async (options, io) => {
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
};

const status: Command = async (options, io) => {
  const { store, config } = await readConfig(options.config);
  io.stdout(`${formatStatus(tokenStatus(config, store.location)).join('\n')}\n`);
  return EXIT.ok;
};

const loginUrl: Command = async (options, io) => {
  const scope = stateScope(options);
  const { config } = await readConfig(options.config);
  const link = buildLoginLink({
    apiKey: config.api_key,
    appSecret: await loadAppSecret(),
    loginRoot: loginRootFor(config),
    scope,
  });
  // The link alone on stdout, so `open "$(kite-token login-url)"` works; the guidance goes to stderr.
  io.stdout(`${link}\n`);
  io.stderr(
    [
      `Open the link above and log in to Kite${config.user_id ? ` as ${config.user_id}` : ''}; it works once, for 10 minutes.`,
      'Kite then sends the browser to the redirect URL registered for this app (api_key ' +
        `${config.api_key}) in the Kite developer console, https://developers.kite.trade/apps.`,
      "Register the login-callback function's URL there and the token is stored in that one step.",
      'Otherwise copy request_token and state from the address bar and, within a few minutes, run:',
      '  kite-token exchange --request-token <request_token> --state <state>',
      '',
    ].join('\n'),
  );
  return EXIT.ok;
};

const exchange: Command = async (options, io) => {
  const requestToken = options.requestToken;
  if (!requestToken) throw new InputError('exchange needs --request-token (from the login redirect)');
  const scope = stateScope(options);
  const appSecret = await loadAppSecret();
  const log = consoleLog(io);
  const refresher = await createRefresher({ configUri: configLocation(options.config), appSecret, log });
  const result = await exchangeRequestToken({
    store: refresher.store,
    kite: refresher.kiteFor,
    appSecret,
    requestToken,
    state: options.state,
    stateScope: scope,
    // The person at the terminal holds the app secret and write access to the store, so could set user_id by hand:
    // a first login here may pin the account it was made with.
    allowFirstLoginPin: true,
    log,
  });
  io.stdout(`${loginSummary(result)}\n`);
  return EXIT.ok;
};

const demo: Command = async (_options, io) => {
  // The demo and its Kite sandbox load only when asked for.
  const { runDemo } = await import('./demo.ts');
  return (await runDemo(io)) ? EXIT.ok : EXIT.failed;
};

export const COMMANDS: Readonly<Record<string, Command>> = {
  refresh,
  status,
  'login-url': loginUrl,
  exchange,
  demo,
};
