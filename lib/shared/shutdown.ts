// Work a stop signal must not cut short: a renewal Kite may already have acted on, until its answer is kept on disk.
// The CLI waits for it on SIGINT/SIGTERM before it exits; elsewhere marking work costs nothing.

const unfinished = new Set<Promise<unknown>>();

/** Marks `work` as something the process must finish before it stops. Returns `work`. */
export function mustFinish<T>(work: Promise<T>): Promise<T> {
  const tracked = work.then(
    () => undefined,
    () => undefined,
  );
  unfinished.add(tracked);
  void tracked.then(() => unfinished.delete(tracked));
  return work;
}

/** Resolves once no marked work is left (work marked meanwhile included). */
export async function unfinishedWorkDone(): Promise<void> {
  while (unfinished.size > 0) await Promise.all([...unfinished]);
}
