// The bench's table (one row per figure, with its goal and PASS / MISS) and the findings printed under it.
import { cpus, loadavg } from 'node:os';
import { round } from './stats.ts';

export interface Row {
  section: string;
  measure: string;
  value: string;
  goal: string;
  verdict: 'PASS' | 'MISS' | 'info';
}

export const rows: Row[] = [];

/** Facts behind the misses, printed under the table. */
export const findings: string[] = [];

/** Adds a row; with `pass` given it is a goal (PASS / MISS), otherwise information. */
export function row(section: string, measure: string, value: string, goal = '', pass?: boolean): void {
  rows.push({ section, measure, value, goal, verdict: pass === undefined ? 'info' : pass ? 'PASS' : 'MISS' });
}

/** Prints the table, ordered by section number and then by when each row was added, and the findings. */
export function printTable(durationS: number): void {
  const head = { section: 'area', measure: 'measure', value: 'figure', goal: 'goal', verdict: '' };
  const ordered = rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => Number.parseInt(a.r.section, 10) - Number.parseInt(b.r.section, 10) || a.i - b.i)
    .map(({ r }) => r);
  const all = [head, ...ordered];
  const width = (k: keyof Row) => Math.max(...all.map((r) => r[k].length));
  const w = { section: width('section'), measure: width('measure'), goal: width('goal') };
  const lines = all.map(
    (r) =>
      `${r.section.padEnd(w.section)}  ${r.measure.padEnd(w.measure)}  ${(r.verdict === 'info' ? '' : r.verdict).padEnd(4)}  ${r.goal.padEnd(w.goal)}  ${r.value}`,
  );
  if (findings.length > 0) lines.push('', 'Where the time and bytes go:', ...findings.map((f) => `- ${f}`));
  const misses = rows.filter((r) => r.verdict === 'MISS').length;
  const passes = rows.filter((r) => r.verdict === 'PASS').length;
  process.stdout.write(
    `\n${lines[0]}\n${'-'.repeat(Math.min(160, (lines[0] ?? '').length + 40))}\n${lines.slice(1).join('\n')}\n\n` +
      `${passes} PASS, ${misses} MISS; ${round(durationS, 1)} s on ${cpus().length} cores, Node ${process.version}, ` +
      `load average ${loadavg()
        .map((x) => round(x, 2))
        .join(' ')}\n`,
  );
}
