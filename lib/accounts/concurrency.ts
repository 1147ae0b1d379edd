// Runs one task per item with at most `limit` running at once, and waits for all of them: one item's failure never
// stops the others, so a tick over many accounts serves every account it can.

/** Settles `task` for every item, `limit` at a time, results in the items' order. */
export async function settleEach<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      try {
        results[index] = { status: 'fulfilled', value: await task(items[index] as T, index) };
      } catch (e: unknown) {
        results[index] = { status: 'rejected', reason: e };
      }
    }
  };
  const workers = Math.max(1, Math.min(Math.floor(limit) || 1, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
  return results;
}
