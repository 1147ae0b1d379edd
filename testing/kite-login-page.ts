// The Kite sandbox's login page, for a person at a browser: shaped like Kite's (the app, the user, one button), but
// it never asks for a password or TOTP. Pressing the button posts to /connect/login/approve, which redirects the
// browser to the app's redirect URL exactly as Kite does after a login.
import { createHash } from 'node:crypto';
import { escapeHtml } from '../lib/login/pages.ts';

const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:2rem 1rem;background:#f6f7f9;color:#1d2330}' +
  'main{max-width:24rem;margin:0 auto;background:#fff;border-radius:8px;padding:1.5rem;' +
  'box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.4rem;margin:0 0 .25rem}' +
  '.brand{color:#e0542f;font-weight:700;letter-spacing:.02em;margin:0}' +
  'dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem;margin:1rem 0}dt{color:#5f6673}' +
  'dd{margin:0;overflow-wrap:anywhere;font-family:ui-monospace,monospace}' +
  'button{width:100%;font:inherit;font-weight:600;color:#fff;background:#e0542f;border:0;border-radius:4px;' +
  'padding:.75rem;cursor:pointer}small{display:block;color:#5f6673;margin-top:1rem}';

const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

export interface LoginPageInput {
  apiKey: string;
  userId: string;
  userName: string;
  /** Where the button's POST goes: /connect/login/approve with the login page's own query. */
  approvePath: string;
  /** The registered redirect URL: the form may lead only here (CSP form-action covers the redirect too). */
  redirectUrl: string;
}

export interface LoginPageAnswer {
  headers: Record<string, string>;
  body: string;
}

/** The page and its headers: no scripts at all, only its own inline style, no caching, no referrer. */
export function sandboxLoginPage(input: LoginPageInput): LoginPageAnswer {
  const csp = [
    "default-src 'none'",
    `style-src 'sha256-${STYLE_HASH}'`,
    `form-action 'self' ${new URL(input.redirectUrl).origin}`,
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  const body = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    '<meta name="robots" content="noindex">',
    '<title>Kite sandbox · Login</title>',
    `<style>${STYLE}</style>`,
    '</head><body><main>',
    '<p class="brand">Kite sandbox</p>',
    '<h1>Login to Kite</h1>',
    '<dl>',
    `<dt>App (api_key)</dt><dd>${escapeHtml(input.apiKey)}</dd>`,
    `<dt>User</dt><dd>${escapeHtml(input.userId)}</dd>`,
    `<dt>Name</dt><dd>${escapeHtml(input.userName)}</dd>`,
    '</dl>',
    `<form method="post" action="${escapeHtml(input.approvePath)}">`,
    `<button type="submit">Log in as ${escapeHtml(input.userId)}</button>`,
    '</form>',
    '<small>This is the local Kite sandbox, not Zerodha: it never asks for a password or TOTP, and its tokens ' +
      'work only here. The button sends you to the app’s redirect URL with a request token, as Kite does.</small>',
    '</main></body></html>',
    '',
  ].join('\n');
  return {
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'content-security-policy': csp,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
    },
    body,
  };
}
