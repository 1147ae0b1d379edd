// The status page: every account of the deployment at a glance (mode, Kite's last word, expiry, last renewal or
// login, readiness for market open) with a "Log in with Kite" button where only a login helps. Its HTML is built
// here from escaped parts, under the callback pages' headers; it never carries a token or a token's digest.
import { formatIst, istDate } from '../engine/expiry.ts';
import { marketReadiness, needsLogin, type Readiness, type TokenStatus } from '../engine/status.ts';
import { buttonHtml, escapeHtml, htmlPage, type LoginPage } from './pages.ts';

/** One account's row: its status and, when it needs a login, a fresh login link; or a document that could not be read. */
export type StatusPageRow =
  | {
      name: string;
      userId: string | undefined;
      status: TokenStatus;
      /** Minutes from the page's time to the next market open (the trading calendar's). */
      minutesToOpen?: number | undefined;
      loginLink?: string | undefined;
    }
  | {
      name: string;
      userId: string | undefined;
      unreadable: true;
      /** The field that makes the document invalid, when it was read but is not a valid broker-config.json. */
      invalidField?: string | undefined;
    };

export interface StatusPageView {
  rows: readonly StatusPageRow[];
  now: Date;
  /** When the status link that opened the page stops working. */
  linkExpiresAt: Date;
}

const MODE: Record<TokenStatus['mode'], string> = {
  'auto-renew': 'auto-renew (refresh token)',
  'daily-login': 'daily login',
};

const SOURCE = {
  login: 'daily login',
  renewal: "renewal (read-only by Kite's description)",
} as const;

const READY_CLASS: Record<Readiness['state'], string> = {
  ready: 'ok',
  not_ready: 'fail',
  unknown: 'unknown',
};

function duration(minutes: number): string {
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h > 0 ? `${h} h ${m} min` : `${m} min`;
}

function kiteSays(s: TokenStatus): string {
  const v = s.verdict;
  if (!v) return 'not asked yet';
  if (!v.current) return `not about this token (the previous one was asked at ${v.at})`;
  return v.accepted ? `accepted at ${v.at}` : `REJECTED at ${v.at}`;
}

function expires(s: TokenStatus): string {
  if (!s.hasAccessToken) return 'no token';
  if (!s.expiresAt || s.minutesToExpiry === undefined) return 'unknown';
  return s.dueReason === 'expired'
    ? `${s.expiresAt} (expired)`
    : `${s.expiresAt} (in ${duration(s.minutesToExpiry)})`;
}

function lastToken(s: TokenStatus): string {
  if (!s.refreshedAt) return s.hasAccessToken ? 'unknown' : 'none';
  const source = s.tokenSource ? SOURCE[s.tokenSource] : 'source not recorded';
  return `${s.refreshedAt}, ${source}`;
}

function readyCheck(s: TokenStatus, now: Date): string {
  if (s.readyCheckedOn === istDate(now)) return 'today’s ready check ran';
  return s.readyCheckedOn ? `no ready check today (the last on ${s.readyCheckedOn})` : 'no ready check yet';
}

const item = (term: string, html: string) => `<dt>${escapeHtml(term)}</dt><dd>${html}</dd>`;

function heading(row: StatusPageRow): string {
  const who = row.userId ? ` <small>(${escapeHtml(row.userId)})</small>` : '';
  return `<h2>${escapeHtml(row.name)}${who}</h2>`;
}

function rowHtml(row: StatusPageRow, now: Date): string {
  if ('unreadable' in row) {
    return [
      '<section>',
      heading(row),
      row.invalidField !== undefined
        ? `<p class="fail">This account’s document is not a valid broker-config.json (field ` +
          `${escapeHtml(row.invalidField)}): it needs fixing; the service’s logs say how.</p>`
        : '<p class="fail">This account’s document could not be read just now. Try again in a minute; if it ' +
          'persists, the service’s logs say why.</p>',
      '</section>',
    ].join('\n');
  }
  const s = row.status;
  const ready = marketReadiness(s, row.minutesToOpen);
  const readyText = { ready: '✅ ready', not_ready: '❌ not ready', unknown: 'unknown' }[ready.state];
  const lines = [
    '<section>',
    heading(row),
    '<dl>',
    item('Mode', escapeHtml(MODE[s.mode])),
    item('Kite says', escapeHtml(kiteSays(s))),
    item('Expires', escapeHtml(expires(s))),
    item('Last renewal or login', escapeHtml(lastToken(s))),
    item(
      'Market open',
      `<span class="${READY_CLASS[ready.state]}">${escapeHtml(readyText)}</span>: ${escapeHtml(ready.why)}; ` +
        escapeHtml(readyCheck(s, now)),
    ),
    '</dl>',
  ];
  if (needsLogin(s, row.minutesToOpen) && row.loginLink) {
    lines.push(buttonHtml({ label: 'Log in with Kite', url: row.loginLink }));
  }
  lines.push('</section>');
  return lines.join('\n');
}

/** The status page for `view.rows`, 200, with the callback pages' strict headers. */
export function renderStatusPage(view: StatusPageView): LoginPage {
  return htmlPage(200, 'Kite token status', [
    '<h1>Kite token status</h1>',
    `<p><small>As of ${escapeHtml(formatIst(view.now))}. Reload for the latest; this link works until ` +
      `${escapeHtml(formatIst(view.linkExpiresAt))}.</small></p>`,
    ...view.rows.map((row) => rowHtml(row, view.now)),
  ]);
}

/** A missing, tampered or expired status link: 403, and nothing about the accounts. */
export function statusForbiddenPage(): LoginPage {
  return htmlPage(403, 'Link not valid', [
    '<h1 class="fail">Link not valid</h1>',
    '<p>This status link is not valid or has expired. Get a fresh one from the latest morning message, or from a ' +
      'terminal: kite-token status-url</p>',
    '<p>Error 403</p>',
  ]);
}

/** The accounts could not be listed (or the service is not configured): 500, naming none. */
export function statusUnavailablePage(): LoginPage {
  return htmlPage(500, 'Status unavailable', [
    '<h1 class="fail">Status unavailable</h1>',
    '<p>The accounts could not be read just now. Try again in a minute; if it persists, check the service’s logs.</p>',
    '<p>Error 500</p>',
  ]);
}
