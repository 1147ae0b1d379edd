// Bundles the kite-token command into dist/cli.mjs (package.json "bin"), so `npm link` or a global install
// gives a `kite-token` on PATH. Dependencies stay external: they resolve from this project's node_modules.
//
//   node scripts/build-cli.ts [outfile]        # default dist/cli.mjs
import { chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const PROJECT_DIR = resolve(fileURLToPath(new URL('..', import.meta.url)));

/**
 * Builds the CLI bundle at `outfile` (relative to the project, or absolute) and makes it executable. Its
 * dependencies are imported by name, so it runs only where a node_modules holding them is in a parent folder.
 */
export async function buildCli(outfile = 'dist/cli.mjs'): Promise<string> {
  const target = resolve(PROJECT_DIR, outfile);
  await build({
    entryPoints: [join(PROJECT_DIR, 'bin/kite-token.ts')],
    outfile: target,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
  });
  await chmod(target, 0o755);
  return target;
}

if (import.meta.main) await buildCli(process.argv[2]);
