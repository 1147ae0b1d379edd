// `kite-token status` over several accounts: one row per account (name, user, mode, where the token came from,
// expiry, Kite's last word, due), so a family's or
// a desk's accounts fit on one screen. A document that cannot be read gets a row that says so.
import type { TokenStatus } from '../engine/status.ts';

export type AccountStatus = { name: string; status: TokenStatus } | { name: string; error: string };

const HEADER = ['ACCOUNT', 'USER', 'MODE', 'TOKEN FROM', 'EXPIRES', 'KITE SAYS', 'DUE'];

function expiry(s: TokenStatus): string {
  if (!s.hasAccessToken) return 'no token';
  if (!s.expiresAt) return 'unknown';
  return s.minutesToExpiry !== undefined && s.minutesToExpiry < 0 ? `${s.expiresAt} (expired)` : s.expiresAt;
}

function due(s: TokenStatus): string {
  if (!s.refreshDue) return s.leaseHeldUntil ? 'no (refresh in progress)' : 'no';
  return `yes (${s.dueReason?.replace('_', ' ') ?? 'due'})`;
}

function kiteSays(s: TokenStatus): string {
  const v = s.verdict;
  if (!v?.current) return 'not asked';
  return `${v.accepted ? 'accepted' : 'REJECTED'} ${v.at.replace(/ IST$/, '')}`;
}

function cells(row: AccountStatus): string[] {
  if ('error' in row) return [row.name, '-', '-', '-', '-', '-', `unreadable: ${row.error}`];
  const s = row.status;
  const from = s.hasAccessToken ? (s.tokenSource ?? 'unknown') : '-';
  return [row.name, s.userId ?? '(unknown)', s.mode, from, expiry(s), kiteSays(s), due(s)];
}

/** The rows as aligned text, a header first. */
export function formatStatusRows(rows: readonly AccountStatus[]): string[] {
  const table = [HEADER, ...rows.map(cells)];
  const widths = HEADER.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  return table.map((r) =>
    r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
  );
}
