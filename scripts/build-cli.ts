// Bundles the kite-token command into dist/cli.mjs (package.json "bin"), so `npm link` or a global install
// gives a `kite-token` on PATH. Dependencies stay external: they resolve from this project's node_modules.
import { chmod } from 'node:fs/promises';
import { build } from 'esbuild';

await build({
  entryPoints: ['bin/kite-token.ts'],
  outfile: 'dist/cli.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
await chmod('dist/cli.mjs', 0o755);
