// `kite-token status-url`: prints a signed link to the status page of a deployment's login callback. It reads no
// document: the link covers every account the deployment keeps, and the page reads them when it is opened.

import { formatIst } from '../engine/expiry.ts';
import { loadAppSecret } from '../lambda/app-secret.ts';
import {
  buildStatusLink,
  MAX_STATUS_LINK_TTL_MS,
  STATUS_LINK_TTL_MS,
  statusPageUrl,
} from '../login/status-link.ts';
import { InputError } from '../shared/errors.ts';
import { EXIT } from './exit.ts';
import type { CliIo } from './io.ts';

export interface StatusUrlOptions {
  /** --callback-url, else KITE_REDIRECT_URL: the login callback's Function URL. */
  callbackUrl: string | undefined;
  /** --hours: how long the link works. Default 12. */
  hours: string | undefined;
  /** The deployment's state scope (--stage or LOGIN_STATE_SCOPE), already checked. */
  scope: string | undefined;
}

const MAX_HOURS = MAX_STATUS_LINK_TTL_MS / 3_600_000;

function callbackUrlOf(given: string | undefined): string {
  const text = given ?? process.env.KITE_REDIRECT_URL;
  if (!text) {
    throw new InputError(
      'status-url needs the login callback URL: --callback-url URL or KITE_REDIRECT_URL (npx osls info lists it)',
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InputError('--callback-url (KITE_REDIRECT_URL) is not a URL');
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new InputError('--callback-url (KITE_REDIRECT_URL) must be https (or http to a loopback address)');
  }
  return url.href;
}

function ttlOf(hours: string | undefined): number {
  if (hours === undefined) return STATUS_LINK_TTL_MS;
  const n = Number(hours);
  if (!/^\d+(\.\d+)?$/.test(hours) || n * 3_600_000 < 60_000 || n > MAX_HOURS) {
    throw new InputError(`--hours must be a number of hours from 0.02 to ${MAX_HOURS}`);
  }
  return Math.round(n * 3_600_000);
}

/** Prints the link alone on stdout (so `open "$(kite-token status-url)"` works) and what it is on stderr. */
export async function printStatusUrl(options: StatusUrlOptions, io: CliIo): Promise<number> {
  const page = statusPageUrl(callbackUrlOf(options.callbackUrl));
  const ttlMs = ttlOf(options.hours);
  const now = new Date();
  const link = buildStatusLink(page, { appSecret: await loadAppSecret(), scope: options.scope, now, ttlMs });
  io.stdout(`${link}\n`);
  io.stderr(
    `The status page of every account; the link works until ${formatIst(new Date(now.getTime() + ttlMs))}. ` +
      'Anyone holding it sees the accounts, not their tokens.\n',
  );
  return EXIT.ok;
}
