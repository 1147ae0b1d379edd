// The kite-token command as `npm link` or a global install runs it: the esbuild bundle (scripts/build-cli.ts),
// started as its own process. The demo must finish and exit by itself; nothing bundled may keep it alive.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../../scripts/build-cli.ts';
import { PROJECT_DIR } from '../../scripts/package.ts';
import { cleanEnv } from '../../testing/clean-env.ts';

const run = promisify(execFile);
const DEMO_TIMEOUT_MS = 30_000;

let dir: string;
let bundle: string;

beforeAll(async () => {
  // Inside the project, so the bundle's external dependencies resolve from its node_modules as dist/cli.mjs's do.
  dir = await mkdtemp(join(PROJECT_DIR, 'dist', '.cli-bundle-test-'));
  bundle = await buildCli(join(dir, 'cli.mjs'));
});

afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the kite-token bundle', () => {
  it(
    'prints the demo and exits 0 on its own',
    async () => {
      const child = await run(process.execPath, [bundle, 'demo'], {
        cwd: dir,
        env: cleanEnv(),
        encoding: 'utf8',
        timeout: DEMO_TIMEOUT_MS,
        killSignal: 'SIGKILL',
      }).catch((e: unknown) => e as { code: number | null; killed: boolean; stdout: string; stderr: string });

      expect('killed' in child && child.killed, 'the demo did not exit within the timeout').toBe(false);
      expect('code' in child ? child.code : 0, child.stderr).toBe(0);
      expect(child.stdout).toContain('✅ Token refreshed successfully');
      expect(child.stdout).toMatch(/Kite check: +GET \/user\/profile with the new token → \w+/);
    },
    DEMO_TIMEOUT_MS + 10_000,
  );
});
