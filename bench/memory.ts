// Section 7, memory: peak RSS of a child that runs a cold and MEMORY_TICKS warm ticks of the built scheduled
// handler, next to a child that imports nothing. Goal: within the functions' memorySize.
import { runChild } from './children.ts';
import { row } from './report.ts';
import { type Bench, SCHEDULED_EVENT } from './setup.ts';
import { progress, round } from './stats.ts';

const MEMORY_TICKS = 50;

export async function memorySection(bench: Bench): Promise<Record<string, unknown>> {
  progress('peak RSS of a handler process');
  const b = bench.scheduled;
  if (!b) return {};
  await bench.servers.call({ op: 'seed', expired: false, stores: ['s3', 'secretsmanager'] });
  const run = runChild(
    { file: b.entryFile, invocations: 1 + MEMORY_TICKS, event: SCHEDULED_EVENT },
    bench.envFor('s3'),
  );
  const nothing = runChild({}, bench.envFor('s3'));
  const memorySizeMb = bench.settings.memorySizeMb ?? 128;
  row(
    '7 memory',
    `scheduled, ${1 + MEMORY_TICKS} ticks (built, s3)`,
    `maxRSS ${round(run.maxRssKiB / 1024, 1)} MiB (node importing nothing: ${round(nothing.maxRssKiB / 1024, 1)} MiB)`,
    `≤ memorySize ${memorySizeMb} MB`,
    run.maxRssKiB <= memorySizeMb * 1024,
  );
  return {
    ticks: 1 + MEMORY_TICKS,
    maxRssKiB: run.maxRssKiB,
    nothingMaxRssKiB: nothing.maxRssKiB,
    memorySizeMb: bench.settings.memorySizeMb ?? null,
    statuses: [...new Set(run.statuses)],
    error: run.error,
  };
}
