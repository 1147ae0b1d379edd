// Ctrl-C or a SIGTERM while Kite is renewing must not drop the answer: the command stops only once the renewal in
// flight has ended and its tokens are kept on disk (lib/shared/shutdown.ts), so the next run can store them.
import { unfinishedWorkDone } from '../shared/shutdown.ts';

const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

/** Installs the handlers: the first signal waits for unfinished work, then exits with 128 + the signal's number. */
export function stopOnSignalsAfterUnfinishedWork(
  write: (text: string) => void = (text) => process.stderr.write(text),
): void {
  let stopping = false;
  for (const signal of Object.keys(SIGNAL_EXIT) as (keyof typeof SIGNAL_EXIT)[]) {
    process.on(signal, () => {
      if (stopping) {
        write(`${signal}: still keeping the token Kite is renewing; stopping as soon as it is on disk\n`);
        return;
      }
      stopping = true;
      void unfinishedWorkDone().then(() => process.exit(SIGNAL_EXIT[signal]));
    });
  }
}
