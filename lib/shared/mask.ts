// The only way a token, request token or secret may appear in output: its first 4 characters at most.

/** "abcd…" for a token, "(none)" for an empty one. Short tokens show fewer characters so most of them stays hidden. */
export function maskToken(token: string | undefined | null): string {
  if (!token) return '(none)';
  const shown = token.length >= 12 ? 4 : Math.floor(token.length / 3);
  return `${token.slice(0, shown)}…`;
}

/** `text` with every whole occurrence of each secret replaced by its mask: for error text that may echo one. */
export function redactSecrets(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 8) out = out.split(secret).join(maskToken(secret));
  }
  return out;
}
