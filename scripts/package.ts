// Builds the deployment package (CloudFormation template and one zip per function) with osls, offline: no AWS
// credentials are read and no AWS endpoint is called, so it runs the same on a laptop, in CI or on a clean clone.
//
//   npm run package                                        # stage dev, into .serverless/
//   npm run package -- --stage prod --param="storeKind=secretsmanager" --package /tmp/out
//
// osls needs an alert e-mail address for the template. Packaging alone does not send anything, so when none is
// given (--param="alertEmail=…", params.<stage>.alertEmail in serverless.yml, or ALERT_EMAIL) a placeholder is
// used and reported; `osls deploy` has no such fallback.
import { spawn } from 'node:child_process';
import { devNull } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_DIR = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const PLACEHOLDER_ALERT_EMAIL = 'alerts@example.com';

/**
 * Environment for osls with every source of AWS credentials and shared config removed. The alert address falls
 * back to a placeholder unless `requireAlertEmail` is set, in which case only the parameters can supply one.
 */
export function offlineEnv(
  base: NodeJS.ProcessEnv = process.env,
  { requireAlertEmail = false }: { requireAlertEmail?: boolean } = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) {
    if (!/^AWS_/.test(name) && name !== 'ALERT_EMAIL') env[name] = value;
  }
  return {
    ...env,
    AWS_CONFIG_FILE: devNull,
    AWS_SHARED_CREDENTIALS_FILE: devNull,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1',
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
    ...(requireAlertEmail ? {} : { ALERT_EMAIL: base.ALERT_EMAIL || PLACEHOLDER_ALERT_EMAIL }),
  };
}

export interface OslsOptions {
  /** Called with osls's output as it arrives; by default it is collected and shown only on failure. */
  onOutput?: (text: string) => void;
  /** No fallback alert address: as `osls deploy` sees the configuration. */
  requireAlertEmail?: boolean;
  /**
   * The whole environment osls runs with, instead of this process's without its AWS settings: for `invoke local`,
   * which runs a function in osls's own process and so needs the function's endpoints and credentials.
   */
  env?: NodeJS.ProcessEnv;
}

export interface PackageOptions {
  stage?: string;
  /** osls parameters, passed as --param="name=value". */
  params?: Record<string, string>;
  /** Output directory; osls's default is .serverless/ in the project. */
  outDir?: string;
  onOutput?: (text: string) => void;
}

export interface PackageResult {
  outDir: string;
  templatePath: string;
  durationMs: number;
}

/** Runs `osls package` offline. Rejects with osls's output when it fails. */
export function packageService(options: PackageOptions = {}): Promise<PackageResult> {
  const args = ['package', '--stage', options.stage ?? 'dev'];
  for (const [name, value] of Object.entries(options.params ?? {})) args.push(`--param=${name}=${value}`);
  if (options.outDir) args.push('--package', options.outDir);
  return runOsls(args, { onOutput: options.onOutput }).then((durationMs) => {
    const outDir = options.outDir ?? join(PROJECT_DIR, '.serverless');
    return { outDir, templatePath: join(outDir, 'cloudformation-template-update-stack.json'), durationMs };
  });
}

/** Runs osls offline with these arguments. Resolves with the time it took; rejects with its output. */
export function runOsls(
  args: string[],
  { onOutput, requireAlertEmail = false, env }: OslsOptions = {},
): Promise<number> {
  const started = Date.now();
  const osls = join(PROJECT_DIR, 'node_modules', 'osls', 'bin', 'serverless.js');
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [osls, ...args], {
      cwd: PROJECT_DIR,
      env: env ?? offlineEnv(process.env, { requireAlertEmail }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const take = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (onOutput) onOutput(text);
      else output += text;
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      if (code === 0) done(Date.now() - started);
      else fail(new Error(`osls ${args.join(' ')} failed (${signal ?? `exit ${code}`})\n${output}`));
    });
  });
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  if (!args.some((a) => a === '--stage' || a === '-s' || a.startsWith('--stage='))) {
    args.unshift('--stage', 'dev');
  }
  if (!process.env.ALERT_EMAIL) {
    process.stderr.write(
      `Where no alertEmail parameter is set, the template subscribes ${PLACEHOLDER_ALERT_EMAIL}: fine for a ` +
        'build check, but deploy with a real address.\n',
    );
  }
  try {
    const durationMs = await runOsls(['package', ...args], {
      onOutput: (text) => process.stderr.write(text),
    });
    process.stderr.write(`Packaged in ${(durationMs / 1000).toFixed(1)} s\n`);
  } catch (e: unknown) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
