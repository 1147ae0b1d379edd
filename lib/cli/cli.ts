// The kite-token command: refresh, status, the daily login (login-url, exchange) and the local demo, as a function
// the bin script and tests call. Exit 0 on success; otherwise non-zero with a one-line reason on stderr.
import { parseArgs } from 'node:util';
import { formatIst } from '../engine/expiry.ts';

import { createRefresher } from '../engine/refresher.ts';
import { formatStatus, tokenStatus } from '../engine/status.ts';
import { loadAppSecret } from '../lambda/app-secret.ts';
import { exchangeRequestToken } from '../login/exchange.ts';
import { buildLoginLink, loginRootFor } from '../login/link.ts';
import { LoginError, loginSummary } from '../login/outcome.ts';
import { classifyError, type ErrorKind, InputError, NotFoundError } from '../shared/errors.ts';
import { createConsoleLog } from '../shared/log.ts';
import { openStore } from '../store/open-store.ts';

export const EXIT = { ok: 0, failed: 1, badInput: 2, loginRequired: 3 } as const;

const USAGE = `Usage: kite-token <command> [options]

Commands:
  refresh [--config LOCATION] [--force]   Renew the access token if it is due (or always, with --force)
  status  [--config LOCATION]             Token age, expiry, mode and whether a refresh is due
  login-url [--config LOCATION]           Print a Kite login link (works for 10 minutes) for the daily login
  exchange --request-token TOKEN [--state STATE] [--config LOCATION]
                                          Store the token of a login whose redirect you copied by hand
  demo                                    Run a refresh against the bundled Kite sandbox and a throwaway file

LOCATION is a path, file://…, s3://bucket/key or secretsmanager://<name-or-arn>;
default $BROKER_CONFIG_URI, then ./broker-config.json.
The Kite app secret comes from KITE_API_SECRET, or from the secret named by KITE_API_SECRET_ID.

Daily login: open the login-url link and log in to Kite. Kite sends the browser to the app's redirect URL
(Kite developer console); when that is the login-callback function's URL, the token is stored right there.
Otherwise copy request_token (and state) from the address bar and run exchange within a few minutes.`;

function configLocation(flag: string | undefined): string {
  return flag ?? process.env.BROKER_CONFIG_URI ?? './broker-config.json';
}

const FAILURE_LINES: Record<ErrorKind, (message: string) => { line: string; code: number }> = {
  invalid_input: (m) => ({ line: `bad input: ${m}`, code: EXIT.badInput }),
  config_invalid: (m) => ({ line: `bad input: ${m}`, code: EXIT.badInput }),
  login_required: (m) => ({ line: `login required: ${m}`, code: EXIT.loginRequired }),
  token_rejected: (m) => ({ line: `Kite rejected the request: ${m}`, code: EXIT.failed }),
  kite_rejected: (m) => ({ line: `Kite rejected the request: ${m}`, code: EXIT.failed }),
  kite_unavailable: (m) => ({ line: `network: ${m}`, code: EXIT.failed }),
  refresh_busy: (m) => ({ line: m, code: EXIT.failed }),
  store_unavailable: (m) => ({ line: m, code: EXIT.failed }),
  token_not_stored: (m) => ({ line: m, code: EXIT.failed }),
  unexpected: (m) => ({ line: `unexpected error: ${m}`, code: EXIT.failed }),
};

/** One line for stderr, and the exit code, for any error. Messages never carry tokens (see errors.ts). */
export function describeFailure(e: unknown): { line: string; code: number } {
  if (e instanceof LoginError) {
    return { line: `login failed: ${e.message}`, code: e.status >= 500 ? EXIT.failed : EXIT.badInput };
  }
  if (e instanceof NotFoundError) return { line: `not found: ${e.message}`, code: EXIT.badInput };
  const failure = classifyError(e);
  return FAILURE_LINES[failure.kind](failure.message);
}

function parseOptions(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      force: { type: 'boolean', default: false },
      'request-token': { type: 'string' },
      state: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Runs one kite-token command. Returns the exit code; never throws. */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (e: unknown) {
    const { line, code } = describeFailure(e);
    io.stderr(`${line}\n`);
    return code;
  }
}

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (e: unknown) {
    throw new InputError(e instanceof Error ? e.message : String(e));
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || !command) {
    io.stdout(`${USAGE}\n`);
    return command || values.help ? EXIT.ok : EXIT.badInput;
  }
  if (command !== 'exchange' && (values['request-token'] !== undefined || values.state !== undefined)) {
    throw new InputError('--request-token and --state belong to the exchange command');
  }
  const log = createConsoleLog({ write: (line) => io.stderr(`${line}\n`) });
  switch (command) {
    case 'refresh': {
      const refresher = await createRefresher({
        configUri: configLocation(values.config),
        appSecret: await loadAppSecret(),
        log,
      });
      const outcome = await refresher.refresh({ force: values.force });
      if (outcome.status === 'login_required') {
        io.stderr(
          'login required: no refresh token is configured; log in once today (kite-token login-url)\n',
        );
        return EXIT.loginRequired;
      }
      if (outcome.status !== 'refreshed')
        log.info('✅ Token is fresh', {
          expiresAt: outcome.expiresAt ? formatIst(outcome.expiresAt) : 'unknown',
        });
      return EXIT.ok;
    }
    case 'status': {
      const store = await openStore(configLocation(values.config), '--config');
      const { config } = await store.read();
      io.stdout(`${formatStatus(tokenStatus(config, store.location)).join('\n')}\n`);
      return EXIT.ok;
    }
    case 'login-url': {
      const store = await openStore(configLocation(values.config), '--config');
      const { config } = await store.read();
      const link = buildLoginLink({
        apiKey: config.api_key,
        appSecret: await loadAppSecret(),
        loginRoot: loginRootFor(config),
      });
      // The link alone on stdout, so `open "$(kite-token login-url)"` works; the guidance goes to stderr.
      io.stdout(`${link}\n`);
      io.stderr(
        [
          `Open the link above and log in to Kite${config.user_id ? ` as ${config.user_id}` : ''}; it works for 10 minutes.`,
          'Kite then sends the browser to the redirect URL registered for this app (api_key ' +
            `${config.api_key}) in the Kite developer console, https://developers.kite.trade/apps.`,
          "Register the login-callback function's URL there and the token is stored in that one step.",
          'Otherwise copy request_token and state from the address bar and, within a few minutes, run:',
          '  kite-token exchange --request-token <request_token> --state <state>',
          '',
        ].join('\n'),
      );
      return EXIT.ok;
    }
    case 'exchange': {
      const requestToken = values['request-token'];
      if (!requestToken) throw new InputError('exchange needs --request-token (from the login redirect)');
      const appSecret = await loadAppSecret();
      const refresher = await createRefresher({ configUri: configLocation(values.config), appSecret, log });
      const result = await exchangeRequestToken({
        store: refresher.store,
        kite: refresher.kiteFor,
        appSecret,
        requestToken,
        state: values.state,
        log,
      });
      io.stdout(`${loginSummary(result)}\n`);
      return EXIT.ok;
    }
    case 'demo': {
      const { runDemo } = await import('./demo.ts');
      return (await runDemo(io)) ? EXIT.ok : EXIT.failed;
    }
    default:
      throw new InputError(`unknown command "${command}" (try --help)`);
  }
}
