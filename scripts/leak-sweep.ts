// CI's token-leak sweep: fails when any token a Kite sandbox issued during the run (KITE_SANDBOX_TOKEN_LOG)
// appears anywhere in the captured output. Prints only masked prefixes of what it finds.
import { readFileSync } from 'node:fs';
import { maskToken } from '../lib/shared/mask.ts';

const [tokenLog, ...outputs] = process.argv.slice(2);
if (!tokenLog || outputs.length === 0) {
  process.stderr.write('usage: node scripts/leak-sweep.ts <token-log> <output-file>...\n');
  process.exit(2);
}
const tokens = [...new Set(readFileSync(tokenLog, 'utf8').split('\n').filter(Boolean))];
const text = outputs.map((file) => readFileSync(file, 'utf8')).join('\n');
const leaked = tokens.filter((token) => text.includes(token));
if (tokens.length === 0) {
  process.stderr.write(
    'leak sweep: no sandbox tokens were recorded; is KITE_SANDBOX_TOKEN_LOG set for the tests?\n',
  );
  process.exit(1);
}
if (leaked.length > 0) {
  process.stderr.write(
    `leak sweep: ${leaked.length} whole token(s) in the output: ${leaked.map(maskToken).join(', ')}\n`,
  );
  process.exit(1);
}
process.stdout.write(
  `leak sweep: ${tokens.length} sandbox tokens, none in ${text.length} characters of output\n`,
);
