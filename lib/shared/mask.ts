// The only way a token, request token or secret may appear in output: its first 4 characters at most.

/** "abcd…" for a token, "(none)" for an empty one. Short tokens show fewer characters so most of them stays hidden. */
export function maskToken(token: string | undefined | null): string {
  if (!token) return '(none)';
  const shown = token.length >= 12 ? 4 : Math.floor(token.length / 3);
  return `${token.slice(0, shown)}…`;
}
