// The kite-token command: refresh, status, verify, the daily login (login-url, exchange) and the local demo, as a function
// the bin script and tests call. Exit 0 on success; otherwise non-zero with a one-line reason on stderr.
import { parseArgs } from 'node:util';
import { InputError } from '../shared/errors.ts';
import { COMMANDS } from './commands.ts';
import { EXIT } from './exit.ts';
import { describeFailure } from './failure.ts';
import { type CliIo, processIo } from './io.ts';

export { EXIT } from './exit.ts';
export { describeFailure } from './failure.ts';
export type { CliIo } from './io.ts';

const USAGE = `Usage: kite-token <command> [options]

Commands:
  refresh [--config LOCATION] [--account NAME] [--force]
                                          Renew the access token if it is due (or always, with --force); with
                                          several accounts, each in turn (or the one --account names), a line each
  status  [--config LOCATION] [--account NAME]
                                          Token age, expiry, mode and whether a refresh is due; with several
                                          accounts, one row per account
  verify  [--config LOCATION] [--account NAME]
                                          Ask Kite whether the stored token works: exit 0 and the user id when it
                                          does, 3 when Kite rejects it (log in or renew), 1 when Kite cannot be
                                          reached; with several accounts, a line each
  login-url [--config LOCATION] [--account NAME] [--stage STAGE]
                                          Print a Kite login link (works once, for 10 minutes) for the daily login
  exchange --url ADDRESS [--config LOCATION] [--account NAME] [--stage STAGE]
  exchange --request-token TOKEN [--state STATE] [--config LOCATION] [--account NAME] [--stage STAGE]
                                          Store the token of a login whose redirect you copied by hand: the
                                          whole address the browser ended on, or its request_token and state
  status-url [--stage STAGE] [--hours N] [--callback-url URL]
                                          Print a signed link (works 12 hours, or N) to the status page of the
                                          login callback at URL (default $KITE_REDIRECT_URL)
  demo                                    Run a refresh against the bundled Kite sandbox and a throwaway file

LOCATION is a path, file://…, s3://bucket/key or secretsmanager://<name-or-arn>;
default $BROKER_CONFIG_URI, then ./broker-config.json.
NAME is an account's name (its document's file, object or secret name without .json) or its user_id; it is
needed when LOCATION holds several accounts. A link made for an account stores its token only in that account.
The Kite app secret comes from KITE_API_SECRET, or from the secret named by KITE_API_SECRET_ID.
STAGE is the deployment's login state scope (its LOGIN_STATE_SCOPE, default $LOGIN_STATE_SCOPE): a link works
only at a login callback deployed with the same.

Daily login: open the login-url link and log in to Kite. Kite sends the browser to the app's redirect URL
(Kite developer console); when that is the login-callback function's URL, the token is stored right there.
Otherwise copy the whole address from the address bar and run exchange --url '…' within a few minutes.`;

function parseOptions(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        force: { type: 'boolean', default: false },
        'request-token': { type: 'string' },
        state: { type: 'string' },
        url: { type: 'string' },
        stage: { type: 'string' },
        account: { type: 'string' },
        hours: { type: 'string' },
        'callback-url': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e: unknown) {
    throw new InputError(e instanceof Error ? e.message : String(e), { cause: e });
  }
}

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

function checkStatusUrlOptions(command: string, values: { hours?: string; 'callback-url'?: string }): void {
  if ((values.hours !== undefined || values['callback-url'] !== undefined) && command !== 'status-url') {
    throw new InputError('--hours and --callback-url belong to the status-url command');
  }
}

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseOptions(argv);
  const command = positionals[0];
  if (values.help || !command) {
    io.stdout(`${USAGE}\n`);
    return command || values.help ? EXIT.ok : EXIT.badInput;
  }
  if (
    command !== 'exchange' &&
    (values['request-token'] !== undefined || values.state !== undefined || values.url !== undefined)
  ) {
    throw new InputError('--url, --request-token and --state belong to the exchange command');
  }
  if (values.stage !== undefined && !['exchange', 'login-url', 'status-url'].includes(command)) {
    throw new InputError('--stage belongs to the login-url, exchange and status-url commands');
  }
  checkStatusUrlOptions(command, values);
  if (
    values.account !== undefined &&
    !['refresh', 'status', 'verify', 'login-url', 'exchange'].includes(command)
  ) {
    throw new InputError('--account belongs to the refresh, status, verify, login-url and exchange commands');
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) throw new InputError(`unknown command "${command}" (try --help)`);
  return run(
    {
      config: values.config,
      force: values.force,
      requestToken: values['request-token'],
      state: values.state,
      url: values.url,
      stage: values.stage,
      account: values.account,
      callbackUrl: values['callback-url'],
      hours: values.hours,
    },
    io,
  );
}
