// Builds the caller helper that trading Lambdas install (package.json "exports": "./client"): ESM JavaScript in
// dist/client/ and its types in dist/types/. The product's own code is bundled; the AWS SDK clients stay imports,
// and each store is a chunk loaded only when a location of its kind is opened, so a caller using S3 never loads
// the Secrets Manager client.
//
//   node scripts/build-client.ts
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const PROJECT_DIR = resolve(fileURLToPath(new URL('..', import.meta.url)));
const JS_DIR = join(PROJECT_DIR, 'dist/client');
const TYPES_DIR = join(PROJECT_DIR, 'dist/types');

/** Bundles lib/client/index.ts with its store modules as lazily loaded chunks. */
async function buildJavaScript(): Promise<void> {
  await rm(JS_DIR, { recursive: true, force: true });
  await build({
    entryPoints: { index: join(PROJECT_DIR, 'lib/client/index.ts') },
    outdir: JS_DIR,
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    platform: 'node',
    format: 'esm',
    target: 'node22',
    // The AWS SDK stays a dependency the installing project resolves (and may already have); zod, used only to
    // validate broker-config.json, is bundled so the client needs nothing else.
    external: ['@aws-sdk/*'],
    sourcemap: true,
    logLevel: 'warning',
  });
}

/** Runs tsc (tsconfig.client.json) for the public entry's declarations. */
function emitDeclarations(): Promise<void> {
  const tsc = join(PROJECT_DIR, 'node_modules/typescript/bin/tsc');
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [tsc, '-p', join(PROJECT_DIR, 'tsconfig.client.json')], {
      cwd: PROJECT_DIR,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', fail);
    child.on('close', (code) => (code === 0 ? done() : fail(new Error(`tsc exited with ${code}`))));
  });
}

/** The sources import each other as `.ts`; the published declarations sit beside no `.ts`, so they say `.js`. */
async function rewriteDeclarationImports(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace(/(from\s+['"]\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1.js$2'));
  }
}

export async function buildClient(): Promise<void> {
  await rm(TYPES_DIR, { recursive: true, force: true });
  await Promise.all([buildJavaScript(), emitDeclarations()]);
  await rewriteDeclarationImports(TYPES_DIR);
}

if (import.meta.main) await buildClient();
