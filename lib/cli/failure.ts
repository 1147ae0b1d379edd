// What kite-token prints for a failure, and its exit code: one line, from the one error classifier.
import { LoginError } from '../login/outcome.ts';
import { classifyError, type ErrorKind, NotFoundError } from '../shared/errors.ts';
import { EXIT } from './exit.ts';

const FAILURE_LINES: Record<ErrorKind, (message: string) => { line: string; code: number }> = {
  invalid_input: (m) => ({ line: `bad input: ${m}`, code: EXIT.badInput }),
  config_invalid: (m) => ({ line: `bad input: ${m}`, code: EXIT.badInput }),
  login_required: (m) => ({ line: `login required: ${m}`, code: EXIT.loginRequired }),
  token_rejected: (m) => ({ line: `Kite rejected the request: ${m}`, code: EXIT.failed }),
  kite_rejected: (m) => ({ line: `Kite rejected the request: ${m}`, code: EXIT.failed }),
  kite_unavailable: (m) => ({ line: `network: ${m}`, code: EXIT.failed }),
  refresh_busy: (m) => ({ line: m, code: EXIT.failed }),
  store_unavailable: (m) => ({ line: m, code: EXIT.failed }),
  token_not_stored: (m) => ({ line: m, code: EXIT.failed }),
  unexpected: (m) => ({ line: `unexpected error: ${m}`, code: EXIT.failed }),
};

/** One line for stderr, and the exit code, for any error. Messages never carry tokens (see errors.ts). */
export function describeFailure(e: unknown): { line: string; code: number } {
  if (e instanceof LoginError) {
    return { line: `login failed: ${e.message}`, code: e.status >= 500 ? EXIT.failed : EXIT.badInput };
  }
  if (e instanceof NotFoundError) return { line: `not found: ${e.message}`, code: EXIT.badInput };
  const failure = classifyError(e);
  return FAILURE_LINES[failure.kind](failure.message);
}
