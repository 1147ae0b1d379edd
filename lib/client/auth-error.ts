// Which failures of a Kite call mean "this access token is dead": only those make the caller helper ask for a new one.
import { isTokenRejected, KiteApiError } from '../shared/errors.ts';

const AUTH_STATUSES = new Set<unknown>([401, 403]);

/** This project's own Kite client error: Kite's verdict when it names one, the HTTP status when it does not. */
function isRejectedByKite(e: KiteApiError): boolean {
  if (e.errorType === '') return AUTH_STATUSES.has(e.status);
  return (e.status === 401 && e.errorType === 'TokenException') || isTokenRejected(e);
}

/** Another client's error (kiteconnect's, a hand-rolled fetch): the same rule over the field names they use. */
function isRejectedByKiteElsewhere(e: object): boolean {
  const r = e as Record<string, unknown>;
  const errorType = r.error_type ?? r.errorType;
  if (typeof errorType === 'string' && errorType !== '') return errorType === 'TokenException';
  const status =
    r.status ?? r.statusCode ?? r.status_code ?? (r.response as Record<string, unknown> | undefined)?.status;
  return AUTH_STATUSES.has(status);
}

/**
 * Kite said the token is no good: a TokenException, or an HTTP 401/403 that names no other error type. A 403
 * PermissionException (an API the app is not subscribed to) or InputException is about the call, not the token,
 * and must not make anyone renew.
 */
export function isKiteAuthError(e: unknown): boolean {
  if (e instanceof KiteApiError) return isRejectedByKite(e);
  return typeof e === 'object' && e !== null && isRejectedByKiteElsewhere(e);
}
