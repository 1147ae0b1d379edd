// The pages the login callback answers with: one small HTML page per outcome, under a CSP that lets only the page's
// own inline style apply. Every text is escaped; none carries a token.
import { createHash } from 'node:crypto';
import { type LoginError, type LoginResult, loginSummary } from './outcome.ts';

/** An HTTP answer as a Lambda Function URL returns it. */
export interface LoginPage {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:2rem;background:#f6f7f9;color:#1d2330}' +
  'main{max-width:36rem;margin:0 auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;' +
  'box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.4rem;margin-top:0}.ok{color:#16794c}' +
  '.fail{color:#b3261e}small{color:#5f6673}';

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

function page(statusCode: number, kind: 'ok' | 'fail', heading: string, lines: string[]): LoginPage {
  const body = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    '<meta name="robots" content="noindex">',
    `<title>${escapeHtml(heading)}</title>`,
    `<style>${STYLE}</style>`,
    '</head><body><main>',
    `<h1 class="${kind}">${escapeHtml(heading)}</h1>`,
    ...lines.map((line) => `<p>${escapeHtml(line)}</p>`),
    '</main></body></html>',
    '',
  ].join('\n');
  return { statusCode, headers: { ...HEADERS }, body };
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

export function successPage(result: LoginResult, now: Date): LoginPage {
  const lines = [`${loginSummary(result, now)}.`];
  if (result.pinned) lines.push(`From now on this service keeps the token of ${result.userId} only.`);
  lines.push('You can close this tab.');
  return page(200, 'ok', '✅ Logged in', lines);
}

/** A refused login: LoginError's message is written for the person who clicked the link. */
export function refusedPage(e: LoginError): LoginPage {
  return page(e.status, 'fail', 'Login failed', [e.message, `Error ${e.status} (${e.code})`]);
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
