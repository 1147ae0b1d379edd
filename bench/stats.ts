// Small statistics and formatting helpers shared by the bench's sections.

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

export function median(xs: number[]): number {
  const s = sorted(xs);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Nearest-rank percentile. */
export function percentile(xs: number[], p: number): number {
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
export const ms = (x: number) => `${round(x, 1)} ms`;
export const kib = (bytes: number) => `${round(bytes / 1024, 1)} KiB`;
export const sum = (record: Record<string, number>) => Object.values(record).reduce((a, b) => a + b, 0);
export const progress = (text: string) => process.stderr.write(`bench: ${text}\n`);

/** "a×1 b×2" for a tally. */
export const tally = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([k, v]) => `${k}×${v}`)
    .join(' ');
