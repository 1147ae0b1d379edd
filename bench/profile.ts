// Where a cold import's CPU time goes: a few child processes import a built handler under --cpu-prof, and each
// sample's own (self) time is put in a bucket: V8 compiling the bundle's source, Node loading its built-in
// modules, garbage collection, the bundle's own code (attributed to packages through the source map, when there
// is one), and the rest of Node. The profile covers the whole child process, bootstrap included.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runChild } from './children.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const BUILTIN_LOADING = new Set(['compileForInternalLoader', 'requireBuiltin', 'internalBinding']);

const NAMED_BUCKETS: Record<string, string> = {
  compileSourceTextModule: 'V8 compiling module source',
  '(garbage collector)': 'garbage collection',
  '(program)': 'V8 native (program)',
};

/** The package or project file a position in the bundle comes from, through its source map. */
function bundleBucket(map: SourceMap | undefined, frame: ProfileNode['callFrame']): string {
  const source = map?.findEntry(frame.lineNumber, frame.columnNumber);
  const original = source && 'originalSource' in source ? source.originalSource : '';
  const pkg = /node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(original)?.[1];
  return `bundle code: ${pkg ?? (original.replace(/^.*?[\\/](lib|functions)[\\/]/, '$1/') || 'top level')}`;
}

/** Where a sample's own time goes. */
function bucketOf(frame: ProfileNode['callFrame'], url: string, map: SourceMap | undefined): string {
  const named = NAMED_BUCKETS[frame.functionName];
  if (named) return named;
  if (BUILTIN_LOADING.has(frame.functionName)) return 'loading Node built-in modules';
  if (frame.url === url) return bundleBucket(map, frame);
  if (frame.url.startsWith('node:internal/deps/undici')) return 'undici (fetch globals)';
  return 'other Node internals';
}

/** Median-free average over `runs` processes, in ms per process, largest buckets first. */
export function profileImport(
  file: string,
  env: NodeJS.ProcessEnv,
  dir: string,
  runs = 3,
): Record<string, number> {
  const out = mkdtempSync(join(dir, 'cpu-prof-'));
  try {
    for (let i = 0; i < runs; i++) {
      runChild({ file }, env, ['--cpu-prof', `--cpu-prof-dir=${out}`, '--cpu-prof-interval=100']);
    }
    const mapFile = `${file}.map`;
    const map = existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))) : undefined;
    const url = pathToFileURL(file).href;
    const buckets: Record<string, number> = {};
    const files = readdirSync(out).filter((f) => f.endsWith('.cpuprofile'));
    for (const name of files) {
      const profile = JSON.parse(readFileSync(join(out, name), 'utf8')) as Profile;
      const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
      profile.samples.forEach((id, i) => {
        const frame = nodes.get(id)?.callFrame;
        if (!frame) return;
        const us = profile.timeDeltas[i] ?? 0;
        const bucket = bucketOf(frame, url, map);
        buckets[bucket] = (buckets[bucket] ?? 0) + us / 1000;
      });
    }
    return Object.fromEntries(
      Object.entries(buckets)
        .map(([k, v]) => [k, Math.round((v / Math.max(1, files.length)) * 10) / 10] as const)
        .sort((a, b) => b[1] - a[1]),
    );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
