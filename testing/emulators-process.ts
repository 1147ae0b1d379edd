// `npm run emulators` (scripts/emulators.ts) as a child process on free ports, with what it printed read back: the
// browser tests and `npm run screenshots` start where a person does, from its "Login link:" and "Status page:" lines.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cleanEnv } from './clean-env.ts';

const SCRIPT = fileURLToPath(new URL('../scripts/emulators.ts', import.meta.url));
const READY = 'Ctrl-C stops them.';

export interface EmulatorsProcess {
  /** The signed login link it printed. */
  loginLink: string;
  /** The signed status page link it printed (12 hours). */
  statusLink: string;
  kiteUrl: string;
  s3Endpoint: string;
  /** The S3 document the login callback stores the token in. */
  s3Document: { bucket: string; key: string };
  /** The login callback's Function URL stand-in, with its trailing slash. */
  callbackUrl: string;
  apiKey: string;
  appSecret: string;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  stop(): Promise<void>;
}

function field(output: string, pattern: RegExp, name: string): string {
  const value = pattern.exec(output)?.[1];
  if (!value) throw new Error(`npm run emulators printed no ${name}:\n${output}`);
  return value;
}

/** Starts scripts/emulators.ts with a clean environment and free ports; resolves once it printed its lines. */
export async function startEmulatorsProcess(
  options: { apiKey?: string; appSecret?: string; timeoutMs?: number } = {},
): Promise<EmulatorsProcess> {
  const apiKey = options.apiKey ?? 'localapikey';
  const appSecret = options.appSecret ?? 'local-app-secret';
  const child: ChildProcess = spawn(process.execPath, [SCRIPT], {
    env: cleanEnv({
      KITE_API_KEY: apiKey,
      KITE_API_SECRET: appSecret,
      KITE_SANDBOX_PORT: '0',
      S3_PORT: '0',
      SECRETS_MANAGER_PORT: '0',
      LOGIN_CALLBACK_PORT: '0',
      KITE_DAILY_SANDBOX_PORT: '0',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`npm run emulators did not start:\n${output}`)),
      options.timeoutMs ?? 15_000,
    );
    const check = () => {
      if (!output.includes(READY)) return;
      clearTimeout(timer);
      resolve();
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm run emulators exited with ${code}:\n${output}`));
    });
  });

  return {
    loginLink: field(output, /^Login link: +(http:\/\/\S+)$/m, 'login link'),
    statusLink: field(output, /^Status page: +(http:\/\/\S+)$/m, 'status page link'),
    // The ordinary app's sandbox: the daily login's.
    kiteUrl: field(output, /^Kite, daily: +(http:\/\/\S+)/m, 'Kite sandbox URL'),
    s3Endpoint: field(output, /^S3: +(http:\/\/\S+)/m, 'S3 endpoint'),
    s3Document: {
      bucket: field(output, /^Daily login: +s3:\/\/([^/\s]+)\//m, 'S3 bucket'),
      key: field(output, /^Daily login: +s3:\/\/[^/\s]+\/(\S+)/m, 'S3 key'),
    },
    callbackUrl: field(output, /^Login callback: +(http:\/\/\S+)/m, 'login callback URL'),
    apiKey,
    appSecret,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
