// The one signing mechanism of the login links and the status page: a key derived (HKDF-SHA256) from the Kite app
// secret for one purpose and one deployment scope, base64url HMAC-SHA256 tags, compared in constant time.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

const SCOPE_SHAPE = /^[A-Za-z0-9._:/-]{1,128}$/;

/**
 * A 32-byte key for one purpose, derived from the Kite app secret: it lives wherever that secret lives and rotates
 * with it. `purpose` (a fixed label) keeps a key useless for anything else; `scope` (the deployment's stage,
 * LOGIN_STATE_SCOPE) keeps one stage's signatures from verifying on another that shares the app secret.
 */
export function derivedKey(
  appSecret: string,
  purpose: string,
  scope?: string,
  caller = 'derivedKey',
): Buffer {
  if (!appSecret) throw new RangeError(`${caller}: the Kite app secret is required`);
  if (scope !== undefined && scope !== '' && !SCOPE_SHAPE.test(scope)) {
    throw new RangeError(`${caller}: the scope must be 1 to 128 letters, digits or . _ : / -`);
  }
  const info = scope ? `${purpose}/scope=${scope}` : purpose;
  return Buffer.from(hkdfSync('sha256', appSecret, Buffer.alloc(0), info, 32));
}

/** The payload's HMAC-SHA256 under `key`, as 43 base64url characters. */
export function signature(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(payload, 'utf8').digest('base64url');
}

/**
 * True when `given` is the payload's signature. Compared as canonical text, in constant time: decoding first would
 * let several spellings of one MAC through.
 */
export function signatureMatches(key: Buffer, payload: string, given: string): boolean {
  const a = Buffer.from(given, 'ascii');
  const b = Buffer.from(signature(key, payload), 'ascii');
  return a.length === b.length && timingSafeEqual(a, b);
}
