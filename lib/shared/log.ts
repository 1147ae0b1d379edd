// The logging surface the product code writes to. In Lambda it is Powertools' Logger (structured JSON);
// in a terminal it is readable lines. Callers pass masked values only (see mask.ts).

export type LogFields = Record<string, unknown>;

/** In Lambda, lib/lambda/context.ts maps this onto Powertools' Logger. */
export interface Log {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const LABELS: Record<string, string> = {
  oldToken: 'Old token',
  newToken: 'New token',
  expiresAt: 'Expires at',
  status: 'Status',
  errorType: 'Error type',
  kiteMessage: 'Kite says',
  location: 'Config',
  userId: 'User',
  mode: 'Mode',
  reason: 'Reason',
};

function render(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/** Readable lines for a terminal: the message, then one indented "Label: value" line per field. */
export function createConsoleLog(options: { write?: (line: string) => void; debug?: boolean } = {}): Log {
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (message: string, fields?: LogFields) => {
    write(message);
    for (const [key, value] of Object.entries(fields ?? {})) {
      if (value === undefined) continue;
      write(`   ${LABELS[key] ?? key}: ${render(value)}`);
    }
  };
  return {
    debug: (message, fields) => {
      if (options.debug) emit(message, fields);
    },
    info: emit,
    warn: emit,
    error: emit,
  };
}

/** Discards everything (library use without a logger). */
export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };
