// The pages the login callback answers with: one small HTML page per outcome, under a CSP that lets only the page's
// own inline style apply. Every text is escaped; none carries a token. Buttons are plain links: no form, no script.
import { createHash } from 'node:crypto';
import { type LoginError, type LoginResult, loginSummary } from './outcome.ts';

/** An HTTP answer as a Lambda Function URL returns it. */
export interface LoginPage {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** One style for every page, phone first: no side scrolling at 375 px, buttons at least 44 px tall to tap. */
const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:1rem;background:#f6f7f9;color:#1d2330}' +
  'main{max-width:40rem;margin:0 auto;background:#fff;border-radius:8px;padding:1.25rem 1.5rem;' +
  'box-shadow:0 1px 3px rgba(0,0,0,.12);overflow-wrap:anywhere}h1{font-size:1.4rem;margin-top:0}' +
  'h2{font-size:1.15rem;margin:0 0 .5rem}.ok{color:#16794c}.fail{color:#b3261e}.unknown{color:#8a5a00}' +
  'small{color:#5f6673}section{border-top:1px solid #e3e6eb;padding:1rem 0 .25rem}' +
  'dl{display:grid;grid-template-columns:minmax(8rem,auto) 1fr;gap:.25rem .75rem;margin:0 0 .75rem}' +
  'dt{color:#5f6673}dd{margin:0}' +
  'a.button{display:inline-block;box-sizing:border-box;min-height:44px;padding:.6rem 1.25rem;border-radius:6px;' +
  'background:#1d4ed8;color:#fff;font-weight:600;text-decoration:none}' +
  'a.button:focus-visible{outline:3px solid #93c5fd;outline-offset:2px}' +
  '@media (max-width:30rem){body{padding:.5rem}main{padding:1rem}dl{grid-template-columns:1fr;gap:0}' +
  'dd{margin-bottom:.5rem}}';

// Only this page's own inline style may apply: no scripts, images, frames, forms or outside requests.
const CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  // The page answers a one-time request: never cache it, never send its URL (with the token) on as a referrer.
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** A link shown as a button: an ordinary <a>, so the page needs no form and no script. */
export interface PageButton {
  label: string;
  /** An http(s) URL: a fresh signed login link, or a status link. */
  url: string;
}

/** The button's HTML, or nothing for a URL that is not http(s). */
export function buttonHtml(button: PageButton): string {
  let url: URL;
  try {
    url = new URL(button.url);
  } catch {
    return '';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return '';
  return `<p><a class="button" href="${escapeHtml(url.href)}">${escapeHtml(button.label)}</a></p>`;
}

/** A whole page around `content`, HTML the caller built from escaped parts, with the strict headers. */
export function htmlPage(statusCode: number, title: string, content: string[]): LoginPage {
  const body = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    '<meta name="robots" content="noindex">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head><body><main>',
    ...content,
    '</main></body></html>',
    '',
  ].join('\n');
  return { statusCode, headers: { ...HEADERS }, body };
}

function page(
  statusCode: number,
  kind: 'ok' | 'fail',
  heading: string,
  lines: string[],
  buttons: PageButton[] = [],
): LoginPage {
  return htmlPage(statusCode, heading, [
    `<h1 class="${kind}">${escapeHtml(heading)}</h1>`,
    ...lines.map((line) => `<p>${escapeHtml(line)}</p>`),
    ...buttons.map(buttonHtml).filter(Boolean),
  ]);
}

function plain(statusCode: number, text: string, extra: Record<string, string> = {}): LoginPage {
  return {
    statusCode,
    headers: {
      ...HEADERS,
      'content-type': 'text/plain; charset=utf-8',
      ...extra,
    },
    body: `${text}\n`,
  };
}

export function notFoundPage(): LoginPage {
  return plain(404, 'Not found');
}

export function methodNotAllowedPage(): LoginPage {
  return plain(405, 'Method not allowed', { allow: 'GET' });
}

/** The login's success; with `statusLink`, a button to the status page (a fresh signed link). */
export function successPage(result: LoginResult, now: Date, statusLink?: string): LoginPage {
  const lines = [`${loginSummary(result, now)}.`];
  if (result.pinned) lines.push(`From now on this service keeps the token of ${result.userId} only.`);
  lines.push(
    statusLink
      ? 'You can close this tab, or see every account on the status page.'
      : 'You can close this tab.',
  );
  return page(
    200,
    'ok',
    '✅ Logged in',
    lines,
    statusLink ? [{ label: 'Status page', url: statusLink }] : [],
  );
}

/**
 * A refused login: LoginError's message is written for the person who clicked the link. `retryLink`, a fresh
 * signed login link for the same account, becomes a "Log in again" button.
 */
export function refusedPage(e: LoginError, retryLink?: string): LoginPage {
  return page(
    e.status,
    'fail',
    'Login failed',
    [e.message, `Error ${e.status} (${e.code})`],
    retryLink ? [{ label: 'Log in again', url: retryLink }] : [],
  );
}

export function notConfiguredPage(): LoginPage {
  return page(500, 'fail', 'Login failed', [
    'The login service is not configured correctly, so nothing was changed. Check the service’s logs.',
    'Error 500',
  ]);
}

export function unexpectedFailurePage(): LoginPage {
  return page(500, 'fail', 'Login failed', [
    'The login could not be finished. Check the service’s logs before trying again.',
    'Error 500',
  ]);
}
