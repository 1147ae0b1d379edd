// Section 2 detail, cold import: fresh Node processes that only import each built handler (no invocation),
// interleaved in rounds with a bare `node -e ''`, the floor bundles, a runner that imports nothing and probes of
// the other dependencies alone. The SDK clients load on the first invocation, so this is not the cold start a
// user waits for (see cold-start.ts); it tells what importing costs by itself.
import { join } from 'node:path';
import { buildSource, PROBES } from './build.ts';
import type { Floors } from './bundle.ts';
import { loadedFrom } from './bundle.ts';
import { runBare, runChild } from './children.ts';
import { profileImport } from './profile.ts';
import { findings, row } from './report.ts';
import { awsCalls } from './server-control.ts';
import { type Bench, buildOf, KINDS } from './setup.ts';
import type { Counts } from './shared.ts';
import { kib, median, ms, percentile, progress, round } from './stats.ts';

export const COLD_IMPORT_GOAL = 1.3;
const ROUNDS = 20;
const WARMUP_ROUNDS = 2;
const PROFILE_RUNS = 3;
const SECTION = '2 cold import (detail)';

interface Target {
  id: string;
  file?: string;
  nodeOptions?: string | undefined;
  bare?: boolean;
}

interface Samples {
  wall: Map<string, number[]>;
  inChild: Map<string, number[]>;
  /** Handles or requests active right after an import, "<target>: <resource>". */
  atImport: Set<string>;
  atImportBaseline: Set<string>;
}

async function targetsOf(bench: Bench, floors: Floors): Promise<Target[]> {
  const { settings } = bench;
  const nodeOptions = settings.nodeOptions;
  const targets: Target[] = [
    { id: 'bare', bare: true, nodeOptions },
    { id: 'nothing', nodeOptions },
  ];
  for (const fn of settings.functions) {
    const b = buildOf(bench, fn);
    targets.push({ id: `handler:${fn.name}`, file: b.entryFile, nodeOptions });
    if (nodeOptions) targets.push({ id: `handler-plain:${fn.name}`, file: b.entryFile });
  }
  for (const [key, floor] of floors.byKey)
    targets.push({ id: `floor:${key}`, file: floor.file, nodeOptions });
  for (const [name, source] of Object.entries(PROBES)) {
    const file = join(bench.workDir, 'probes', `${name}${settings.outputExtension}`);
    await buildSource(bench.projectDir, settings, source, file);
    targets.push({ id: `probe:${name}`, file, nodeOptions });
  }
  return targets;
}

/** One run of a target: its wall time, import time and what was active right after the import. */
function runTarget(bench: Bench, t: Target, s: Samples, measured: boolean): void {
  const env = bench.envFor('s3', t.nodeOptions);
  if (t.bare) {
    const w = runBare(env);
    if (measured) s.wall.get(t.id)?.push(w);
    return;
  }
  const run = runChild(t.file ? { file: t.file } : {}, env);
  const into = t.file ? s.atImport : s.atImportBaseline;
  for (const resource of run.atImport) into.add(`${t.id}: ${resource}`);
  if (!measured) return;
  s.wall.get(t.id)?.push(run.wallMs);
  s.inChild.get(t.id)?.push(run.importMs);
}

/** Rounds over all targets, each round starting one target later so none always runs first. */
function sample(bench: Bench, targets: Target[]): Samples {
  const s: Samples = {
    wall: new Map(targets.map((t) => [t.id, []])),
    inChild: new Map(targets.map((t) => [t.id, []])),
    atImport: new Set(),
    atImportBaseline: new Set(),
  };
  for (let r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
    for (let i = 0; i < targets.length; i++) {
      runTarget(bench, targets[(i + r) % targets.length] as Target, s, r >= WARMUP_ROUNDS);
    }
  }
  // Handles the runner itself has, and stdio streams (a PipeWrap appears once anything touches process.stdout
  // or process.stderr, as Powertools and the SDK do), are not I/O started by the import.
  const resourceOf = (r: string) => r.slice(r.indexOf(': ') + 2);
  const baselineKinds = new Set(['PipeWrap', 'TTYWrap', ...[...s.atImportBaseline].map(resourceOf)]);
  for (const r of [...s.atImport]) if (baselineKinds.has(resourceOf(r))) s.atImport.delete(r);
  return s;
}

/** Section 2 detail: import-only ratios per function and store kind, I/O at import, dependency probes. */
export async function coldImportSection(bench: Bench, floors: Floors): Promise<Record<string, unknown>> {
  progress(`cold imports: ${WARMUP_ROUNDS + ROUNDS} rounds of fresh node processes`);
  await bench.servers.call({ op: 'reset' });
  const targets = await targetsOf(bench, floors);
  const s = sample(bench, targets);
  const importIo = awsCalls(await bench.servers.call<Counts>({ op: 'counts' }));
  const med = (m: Map<string, number[]>, id: string) => median(m.get(id) ?? []);
  const bareWall = med(s.wall, 'bare');
  const ratios: Record<string, unknown> = {};
  const profiles: Record<string, Record<string, number>> = {};
  row(SECTION, "bare node -e '' (wall)", ms(bareWall));
  for (const fn of bench.settings.functions) {
    const hid = `handler:${fn.name}`;
    const extra = med(s.wall, hid) - bareWall;
    const imp = med(s.inChild, hid);
    let missed = false;
    for (const kind of KINDS) {
      const fid = `floor:${floors.keyOf(fn.name, kind)}`;
      const floorExtra = med(s.wall, fid) - bareWall;
      const floorImport = med(s.inChild, fid);
      const ratio = extra / floorExtra;
      ratios[`${fn.name}/${kind}`] = {
        handlerExtraMs: round(extra, 2),
        floorExtraMs: round(floorExtra, 2),
        ratio: round(ratio, 3),
        handlerImportMs: round(imp, 2),
        floorImportMs: round(floorImport, 2),
        importRatio: round(imp / floorImport, 3),
      };
      row(
        SECTION,
        `${fn.name} (${kind})`,
        `extra ${ms(extra)} vs floor ${ms(floorExtra)}: ratio ${round(ratio, 2)}; ` +
          `in-child import ${ms(imp)} vs ${ms(floorImport)}: ${round(imp / floorImport, 2)}`,
        `ratio ≤ ${COLD_IMPORT_GOAL}`,
        ratio <= COLD_IMPORT_GOAL,
      );
      missed ||= ratio > COLD_IMPORT_GOAL;
    }
    const b = buildOf(bench, fn);
    profiles[fn.name] = profileImport(b.entryFile, bench.envFor('s3'), bench.workDir, PROFILE_RUNS);
    if (missed) {
      const atImportBytes = runChild({ file: b.entryFile, trace: true }, bench.envFor('s3'));
      findings.push(
        `cold import ${fn.name}: the import loads ${kib(loadedFrom(bench.projectDir, b, atImportBytes).bytes)} of ` +
          `code; CPU per process (--cpu-prof, whole process): ${Object.entries(profiles[fn.name] ?? {})
            .slice(0, 8)
            .map(([k, v]) => `${k} ${v} ms`)
            .join(', ')}`,
      );
    }
    if (bench.settings.nodeOptions) {
      row(
        SECTION,
        `${fn.name} without NODE_OPTIONS`,
        `extra ${ms(med(s.wall, `handler-plain:${fn.name}`) - bareWall)}; ` +
          `in-child import ${ms(med(s.inChild, `handler-plain:${fn.name}`))}`,
      );
    }
  }
  row(
    SECTION,
    'I/O at import',
    `${importIo.total} AWS requests; ${s.atImport.size ? [...s.atImport].join(', ') : 'no active handles'}`,
    'none',
    importIo.total === 0 && s.atImport.size === 0,
  );
  row(
    SECTION,
    'other dependencies alone (extra)',
    Object.keys(PROBES)
      .map((name) => `${name} ${ms(med(s.wall, `probe:${name}`) - bareWall)}`)
      .join(', '),
  );
  return {
    rounds: ROUNDS,
    nodeOptions: bench.settings.nodeOptions ?? '',
    bareWallMs: round(bareWall, 2),
    nothingWallMs: round(med(s.wall, 'nothing'), 2),
    awsRequestsDuringImports: importIo.total,
    activeAtImport: [...s.atImport],
    targets: Object.fromEntries(
      targets.map((t) => [
        t.id,
        {
          wallMedianMs: round(med(s.wall, t.id), 2),
          wallP90Ms: round(percentile(s.wall.get(t.id) ?? [], 90), 2),
          extraOverBareMs: round(med(s.wall, t.id) - bareWall, 2),
          importMedianMs: t.bare ? null : round(med(s.inChild, t.id), 2),
        },
      ]),
    ),
    ratios,
    cpuProfiles: profiles,
  };
}
