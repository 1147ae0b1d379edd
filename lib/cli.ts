// The kite-token command: refresh, status and the local demo, as a function the bin script and tests call. Exit 0 when the token is fresh or was refreshed;
// otherwise non-zero with a one-line reason on stderr.
import { parseArgs } from 'node:util';
import { loadAppSecret } from './app-secret.ts';
import {
  ConfigError,
  InputError,
  KiteApiError,
  KiteNetworkError,
  LoginRequiredError,
  NotFoundError,
  StoreError,
} from './errors.ts';
import { formatIst } from './expiry.ts';
import { createConsoleLog } from './log.ts';
import { RefreshBusyError, TokenNotStoredError } from './refresh.ts';
import { createRefresher } from './refresher.ts';
import { formatStatus, tokenStatus } from './status.ts';
import { openStore } from './store/open-store.ts';

export const EXIT = { ok: 0, failed: 1, badInput: 2, loginRequired: 3 } as const;

const USAGE = `Usage: kite-token <command> [options]

Commands:
  refresh [--config LOCATION] [--force]   Renew the access token if it is due (or always, with --force)
  status  [--config LOCATION]             Token age, expiry, mode and whether a refresh is due
  demo                                    Run a refresh against the bundled Kite sandbox and a throwaway file

LOCATION is a path, file://…, s3://bucket/key or secretsmanager://<name-or-arn>;
default $BROKER_CONFIG_URI, then ./broker-config.json.
The Kite app secret comes from KITE_API_SECRET, or from the secret named by KITE_API_SECRET_ID.`;

function configLocation(flag: string | undefined): string {
  return flag ?? process.env.BROKER_CONFIG_URI ?? './broker-config.json';
}

/** One line for stderr, and the exit code, for any error. Messages never carry tokens (see errors.ts). */
export function describeFailure(e: unknown): { line: string; code: number } {
  if (e instanceof ConfigError || e instanceof InputError)
    return { line: `bad input: ${e.message}`, code: EXIT.badInput };
  if (e instanceof NotFoundError) return { line: `not found: ${e.message}`, code: EXIT.badInput };
  if (e instanceof LoginRequiredError)
    return { line: `login required: ${e.message}`, code: EXIT.loginRequired };
  if (e instanceof KiteApiError) {
    return { line: `Kite rejected the request: ${e.status} ${e.errorType}: ${e.message}`, code: EXIT.failed };
  }
  if (e instanceof KiteNetworkError) return { line: `network: ${e.message}`, code: EXIT.failed };
  if (e instanceof TokenNotStoredError || e instanceof RefreshBusyError || e instanceof StoreError) {
    return { line: e.message, code: EXIT.failed };
  }
  return {
    line: `unexpected error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
    code: EXIT.failed,
  };
}

function parseOptions(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      force: { type: 'boolean', default: false },
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
        io.stderr('login required: no refresh token is configured; log in once today to get a token\n');
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
    case 'demo': {
      const { runDemo } = await import('./demo.ts');
      return (await runDemo(io)) ? EXIT.ok : EXIT.failed;
    }
    default:
      throw new InputError(`unknown command "${command}" (try --help)`);
  }
}
