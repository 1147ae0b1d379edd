// Section 1, bundle: what a cold invocation of each function loads (the handler file and the chunks it pulls in),
// in minified and gzip bytes, next to a floor bundle of only the AWS SDK clients that function's path uses.
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import {
  buildSource,
  bytesByOrigin,
  clientsIn,
  type FloorSpec,
  type FunctionBuild,
  floorKey,
  floorSource,
  floorSpec,
} from './build.ts';
import { type RunResult, runChild } from './children.ts';
import { findings, row } from './report.ts';
import { type Bench, buildOf, eventFor, KINDS } from './setup.ts';
import type { StoreKind } from './shared.ts';
import { kib, progress, round } from './stats.ts';

export const BUNDLE_GOAL = 1.25;

export interface Loaded {
  /** Metafile output paths of the files the run loaded from the build. */
  outputs: string[];
  bytes: number;
  gzipBytes: number;
  run: RunResult;
}

export interface Floor {
  spec: FloorSpec;
  file: string;
  bytes: number;
  gzipBytes: number;
  origins: Record<string, number>;
}

/** The floors, and which floor each function/kind compares with. */
export interface Floors {
  byKey: Map<string, Floor>;
  keyOf(fn: string, kind: StoreKind): string;
}

export function loadedFrom(projectDir: string, b: FunctionBuild, run: RunResult): Loaded {
  const byAbsolute = new Map<string, string>();
  for (const output of Object.keys(b.metafile.outputs)) byAbsolute.set(resolve(projectDir, output), output);
  const outputs: string[] = [];
  for (const url of run.loaded) {
    const output = byAbsolute.get(fileURLToPath(url));
    if (output && !outputs.includes(output)) outputs.push(output);
  }
  let bytes = 0;
  let gzipBytes = 0;
  for (const output of outputs) {
    const data = readFileSync(resolve(projectDir, output));
    bytes += data.length;
    gzipBytes += gzipSync(data).length;
  }
  return { outputs, bytes, gzipBytes, run };
}

/** Where a bundle's bytes go beyond its floor's, by package or project file, largest first. */
function excessOverFloor(
  bundle: Record<string, number>,
  floor: Record<string, number>,
): Array<[string, number]> {
  const keys = new Set([...Object.keys(bundle), ...Object.keys(floor)]);
  const deltas: Array<[string, number]> = [];
  for (const key of keys) {
    const delta = (bundle[key] ?? 0) - (floor[key] ?? 0);
    if (delta !== 0) deltas.push([key, delta]);
  }
  return deltas.sort((a, b) => b[1] - a[1]);
}

/** Runs each function's first invocation once per store kind with a module hook that records what it loads. */
export async function traceLoads(bench: Bench): Promise<Map<string, Loaded>> {
  progress('tracing what each function loads on a cold invocation');
  await bench.servers.call({ op: 'seed', expired: false, stores: KINDS });
  const loaded = new Map<string, Loaded>();
  for (const fn of bench.settings.functions) {
    const b = buildOf(bench, fn);
    for (const kind of KINDS) {
      const run = runChild(
        { file: b.entryFile, trace: true, invocations: 1, event: eventFor(fn.entry) },
        bench.envFor(kind),
      );
      loaded.set(`${fn.name}/${kind}`, loadedFrom(bench.projectDir, b, run));
    }
  }
  return loaded;
}

/** Builds one floor per distinct set of clients. */
export async function buildFloors(bench: Bench): Promise<Floors> {
  const byKey = new Map<string, Floor>();
  const keys = new Map<string, string>();
  const { settings } = bench;
  for (const fn of settings.functions) {
    const b = buildOf(bench, fn);
    const bundleClients = clientsIn(b.metafile, Object.keys(b.metafile.outputs));
    for (const kind of KINDS) {
      const spec = floorSpec(kind, bundleClients);
      const key = floorKey(spec);
      keys.set(`${fn.name}/${kind}`, key);
      if (byKey.has(key)) continue;
      const file = join(
        bench.workDir,
        'floors',
        `${key.replace(/[^a-z0-9+-]/gi, '_')}${settings.outputExtension}`,
      );
      const fb = await buildSource(bench.projectDir, settings, floorSource(spec), file);
      const data = readFileSync(file);
      byKey.set(key, {
        spec,
        file,
        bytes: data.length,
        gzipBytes: gzipSync(data).length,
        origins: bytesByOrigin(fb.metafile, Object.keys(fb.metafile.outputs)),
      });
    }
  }
  return { byKey, keyOf: (fn, kind) => keys.get(`${fn}/${kind}`) as string };
}

/** Section 1: one row per function and store kind. */
export function bundleSection(bench: Bench, loaded: Map<string, Loaded>, floors: Floors): unknown[] {
  const results: unknown[] = [];
  for (const fn of bench.settings.functions) {
    const b = buildOf(bench, fn);
    for (const kind of KINDS) {
      const l = loaded.get(`${fn.name}/${kind}`) as Loaded;
      const floor = floors.byKey.get(floors.keyOf(fn.name, kind)) as Floor;
      const ratio = l.bytes / floor.bytes;
      const gzipRatio = l.gzipBytes / floor.gzipBytes;
      const excess = excessOverFloor(bytesByOrigin(b.metafile, l.outputs), floor.origins);
      results.push({
        function: fn.name,
        entry: fn.entry,
        storeKind: kind,
        files: l.outputs.map((o) => relative(join(bench.workDir, 'build'), resolve(bench.projectDir, o))),
        bytes: l.bytes,
        gzipBytes: l.gzipBytes,
        floor: { clients: floor.spec, bytes: floor.bytes, gzipBytes: floor.gzipBytes },
        ratio: round(ratio, 3),
        gzipRatio: round(gzipRatio, 3),
        excessOverFloor: Object.fromEntries(excess.slice(0, 12)),
        firstInvocation: { statuses: l.run.statuses, error: l.run.error },
      });
      if (ratio > BUNDLE_GOAL) {
        findings.push(
          `bundle ${fn.name} (${kind}): +${kib(l.bytes - floor.bytes)} over the floor, mostly ` +
            excess
              .slice(0, 7)
              .map(([origin, bytes]) => `${origin} ${bytes > 0 ? '+' : ''}${kib(bytes)}`)
              .join(', '),
        );
      }
      row(
        '1 bundle',
        `${fn.name} (${kind})`,
        `${kib(l.bytes)} / gz ${kib(l.gzipBytes)}; floor ${kib(floor.bytes)} / gz ${kib(floor.gzipBytes)}; ` +
          `ratio ${round(ratio, 2)} (gz ${round(gzipRatio, 2)})`,
        `ratio ≤ ${BUNDLE_GOAL}`,
        ratio <= BUNDLE_GOAL,
      );
    }
  }
  return results;
}
