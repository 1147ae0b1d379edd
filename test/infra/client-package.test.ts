// The caller helper as a trading Lambda gets it: `npm pack` this project (which builds it through `prepare`),
// install the tarball into a fresh project outside this one, import `kite-token-refresh/client` from plain Node
// ESM and type-check a TypeScript file against the published declarations.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_DIR } from '../../scripts/package.ts';
import { cleanEnv } from '../../testing/clean-env.ts';

const run = promisify(execFile);
const TIMEOUT = 180_000;

/** Only the package's runtime imports may appear in what is shipped: the SDK clients and Node's own modules. */
const ALLOWED_IMPORTS = ['@aws-sdk/client-lambda', '@aws-sdk/client-s3', '@aws-sdk/client-secrets-manager'];

/**
 * npm with a clean environment: none of this shell's product or AWS variables, none of the npm_* variables an
 * outer `npm test` sets, and this Node first on PATH so `prepare` runs on the same Node as the tests.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env = cleanEnv({ PATH: [dirname(process.execPath), process.env.PATH].join(delimiter) });
  for (const name of Object.keys(env)) if (/^npm_/i.test(name)) delete env[name];
  return env;
}

const npm = (args: string[], cwd: string) =>
  run('npm', args, { cwd, env: npmEnv(), encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });

/** What a bundled ESM file imports: at load (import/export … from) and later (import()). */
function importsOf(code: string): { atLoad: string[]; later: string[] } {
  const specs = (pattern: RegExp) => [...code.matchAll(pattern)].map((m) => m[1] ?? '');
  return {
    atLoad: specs(/^(?:import|export)\b[^"'`;]*?["']([^"']+)["']/gm),
    later: specs(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
  };
}

const isRelative = (spec: string) => spec.startsWith('./') || spec.startsWith('../');

/** The packages loaded before any import() runs: the entry's, and those of every chunk it imports at load. */
async function packagesAtLoad(entry: string): Promise<Set<string>> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of importsOf(await readFile(file, 'utf8')).atLoad) {
      if (isRelative(spec)) queue.push(join(dirname(file), spec));
      else packages.add(spec);
    }
  }
  return packages;
}

let work: string;
let consumer: string;
let packedFiles: string[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ktr-client-package-'));
  consumer = join(work, 'trading-lambda');
  await mkdir(consumer);
  const packed = await npm(['pack', '--json', '--pack-destination', work], PROJECT_DIR);
  const [tarball] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  if (!tarball) throw new Error(`npm pack printed no tarball: ${packed.stdout}`);
  packedFiles = tarball.files.map((f) => f.path);
  await writeFile(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'trading-lambda', private: true, type: 'module' }),
  );
  await npm(
    ['install', join(work, tarball.filename), '--no-audit', '--no-fund', '--prefer-offline'],
    consumer,
  );
}, TIMEOUT);

afterAll(() => rm(work, { recursive: true, force: true }));

describe('the kite-token-refresh/client package', () => {
  it('ships the built client, its types and the CLI, and no source, tests or test servers', () => {
    expect(packedFiles).toEqual(
      expect.arrayContaining(['dist/client/index.js', 'dist/types/client/index.d.ts', 'dist/cli.mjs']),
    );
    const unexpected = packedFiles.filter(
      (path) => !path.startsWith('dist/') && !['package.json', 'README.md'].includes(path),
    );
    expect(unexpected).toEqual([]);
  });

  it('reads the token from a file:// broker-config.json when imported from plain Node ESM', async () => {
    const config = join(consumer, 'broker-config.json');
    await writeFile(
      config,
      JSON.stringify({
        type: 'kite',
        api_key: 'k',
        api_secret: 'packaged-access-token',
        access_token_expires_at: '2099-01-01T06:00:00+05:30',
      }),
    );
    const script = `
      import * as client from 'kite-token-refresh/client';
      const auth = client.createKiteAuth({ configUri: ${JSON.stringify(pathToFileURL(config).href)} });
      const viaCall = await auth.withKiteAuth(async (token) => token);
      process.stdout.write(JSON.stringify({
        token: await auth.getAccessToken(),
        viaCall,
        exports: Object.keys(client).sort(),
      }));
    `;

    const child = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: consumer,
      env: cleanEnv(),
      encoding: 'utf8',
    });

    expect(JSON.parse(child.stdout)).toEqual({
      token: 'packaged-access-token',
      viaCall: 'packaged-access-token',
      exports: [
        'AppError',
        'ConfigError',
        'KiteApiError',
        'LoginRequiredError',
        'TokenRefreshError',
        'createKiteAuth',
        'getAccessToken',
        'isKiteAuthError',
        'withKiteAuth',
      ],
    });
  });

  it('installs none of what only the Lambda functions use: Powertools, middy, the SNS client', () => {
    for (const name of [
      '@aws-lambda-powertools/logger',
      '@aws-lambda-powertools/metrics',
      '@middy/core',
      '@aws-sdk/client-sns',
    ]) {
      expect(existsSync(join(consumer, 'node_modules', name)), name).toBe(false);
    }
    expect(existsSync(join(consumer, 'node_modules/@aws-sdk/client-lambda'))).toBe(true);
  });

  it('imports only the AWS SDK clients, and the S3 and Secrets Manager ones only when that store is opened', async () => {
    const dir = join(consumer, 'node_modules/kite-token-refresh/dist/client');
    const files = (await readdir(dir, { recursive: true }))
      .filter((name) => name.endsWith('.js'))
      .map((name) => join(dir, name));
    const everywhere = new Set<string>();
    for (const file of files) {
      const { atLoad, later } = importsOf(await readFile(file, 'utf8'));
      for (const spec of [...atLoad, ...later]) if (!isRelative(spec)) everywhere.add(spec);
    }
    const atStart = await packagesAtLoad(join(dir, 'index.js'));

    expect(
      [...everywhere].filter((spec) => !spec.startsWith('node:') && !ALLOWED_IMPORTS.includes(spec)),
    ).toEqual([]);
    expect([...everywhere]).toEqual(expect.arrayContaining(ALLOWED_IMPORTS));
    expect([...atStart].filter((spec) => !spec.startsWith('node:'))).toEqual(['@aws-sdk/client-lambda']);
  });

  it(
    'type-checks a trading Lambda that uses createKiteAuth and withKiteAuth, and rejects a wrong option',
    async () => {
      await writeFile(
        join(consumer, 'handler.ts'),
        [
          "import { createKiteAuth, type KiteAuth, TokenRefreshError, withKiteAuth } from 'kite-token-refresh/client';",
          '',
          "const auth: KiteAuth = createKiteAuth({ configUri: 's3://bucket/broker-config.json', marginMs: 60_000 });",
          'export const orders: Promise<number> = auth.withKiteAuth(async (token: string) => token.length);',
          'export const profile: Promise<string> = withKiteAuth(async (token) => token);',
          "export const retryable: boolean = new TokenRefreshError('x', { retryable: true }).retryable;",
          '// @ts-expect-error marginMs is a number of milliseconds',
          "createKiteAuth({ marginMs: '5m' });",
          '',
        ].join('\n'),
      );
      await writeFile(
        join(consumer, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'es2023',
            lib: ['es2023'],
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            noEmit: true,
            types: [],
            skipLibCheck: true,
          },
          files: ['handler.ts'],
        }),
      );
      const tsc = join(PROJECT_DIR, 'node_modules/typescript/bin/tsc');

      const checked = await run(process.execPath, [tsc, '-p', join(consumer, 'tsconfig.json')], {
        cwd: consumer,
        env: cleanEnv(),
        encoding: 'utf8',
      }).catch((e: unknown) => e as { stdout: string; code: number });

      expect(checked.stdout).toBe('');
      expect('code' in checked ? checked.code : 0).toBe(0);
    },
    TIMEOUT,
  );
});
