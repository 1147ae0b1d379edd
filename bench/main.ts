// `npm run bench`: how big, how fast to start, how cheap per tick and how well-behaved under a storm the Lambda
// functions are. A benchmark, not a test: it exits 0 whenever it could measure, prints a table of figures with
// their goals (PASS / MISS), and writes the same figures to bench-results.json (gitignored). bench/README.md says
// what each section measures and how.
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanProcessEnv } from '../testing/clean-env.ts';
import { accountsSection } from './accounts.ts';
import { BUNDLE_GOAL, buildFloors, bundleSection, traceLoads } from './bundle.ts';
import { NODE } from './children.ts';
import { clientsSection } from './clients.ts';
import { COLD_IMPORT_GOAL, coldImportSection } from './cold-import.ts';
import { COLD_START_GOAL, coldStartSection } from './cold-start.ts';
import { DROPPED_WARNING, dropped, loadHandlers, refreshSection, warmTickSection } from './in-process.ts';
import { memorySection } from './memory.ts';
import { findings, printTable, rows } from './report.ts';
import { type Bench, prepareBench } from './setup.ts';
import { round } from './stats.ts';
import { stormSections } from './storm.ts';

const PROJECT_DIR = resolve(fileURLToPath(new URL('..', import.meta.url)));
const RESULTS_FILE = join(PROJECT_DIR, 'bench-results.json');

/** Every section in order; the in-process ones last, as they import the handlers into this process. */
async function measure(bench: Bench): Promise<Record<string, unknown>> {
  const loaded = await traceLoads(bench);
  const floors = await buildFloors(bench);
  const bundle = bundleSection(bench, loaded, floors);
  const coldStart = await coldStartSection(bench);
  const coldImport = await coldImportSection(bench, floors);
  const clientsLoaded = await clientsSection(bench);
  const memory = await memorySection(bench);
  const handlers = await loadHandlers(bench);
  const warmTick = await warmTickSection(bench, handlers);
  const refresh = await refreshSection(bench, handlers);
  const storms = await stormSections(bench, handlers);
  const accounts = await accountsSection(bench);
  return {
    bundle,
    coldStart,
    coldImport,
    clientsLoaded,
    warmTick,
    refresh,
    storm: storms.oneContainer,
    stormSeparateContainers: storms.separate,
    memory,
    accounts,
  };
}

async function main(): Promise<void> {
  // Nothing from the user's shell (a real KITE_API_SECRET, an AWS profile or endpoint) reaches a measurement.
  cleanProcessEnv();
  const started = performance.now();
  const loadBefore = loadavg();
  const workDir = await mkdtemp(join(tmpdir(), 'ktr-bench-'));
  await mkdir(join(workDir, 'tmp'));
  let bench: Bench | undefined;
  const cleanup = () => {
    if (bench && bench.servers.child.exitCode === null) bench.servers.child.kill();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  process.once('SIGTERM', () => {
    cleanup();
    process.exit(143);
  });
  try {
    bench = await prepareBench(PROJECT_DIR, workDir);
    const sections = await measure(bench);
    const durationS = (performance.now() - started) / 1000;
    printTable(durationS);
    const { settings } = bench;
    const results = {
      meta: {
        date: new Date().toISOString(),
        node: process.version,
        childNode: NODE,
        cpus: cpus().length,
        loadAverageBefore: loadBefore.map((x) => round(x, 2)),
        loadAverageAfter: loadavg().map((x) => round(x, 2)),
        durationS: round(durationS, 1),
        droppedWarnings: { [DROPPED_WARNING]: dropped.warnings },
      },
      build: {
        source: settings.source,
        options: settings.options,
        nodeOptions: settings.nodeOptions ?? null,
        functions: settings.functions,
        notes: settings.notes,
      },
      goals: { bundleRatio: BUNDLE_GOAL, coldStartRatio: COLD_START_GOAL, coldImportRatio: COLD_IMPORT_GOAL },
      ...sections,
      table: rows,
      findings,
    };
    await writeFile(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`\nWrote ${relative(process.cwd(), RESULTS_FILE) || RESULTS_FILE}\n`);
  } finally {
    await bench?.servers.close().catch(() => {});
    cleanup();
  }
}

try {
  await main();
  process.exit(0);
} catch (e: unknown) {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
}
