/**
 * The agent's one bounded worker pool (engine and drivers alike): fn over
 * items with at most `limit` calls outstanding, results in the input order.
 * After a failure no new call starts, and the first failure is thrown once
 * the calls already running have settled, so nothing keeps working for a
 * caller that has been told it failed.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failure: { e: unknown } | undefined;
  const lane = async () => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(0, Math.min(limit, items.length)) }, lane));
  if (failure) throw failure.e;
  return out;
}

/** mapLimit for work done for its effect. */
export async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  await mapLimit(items, limit, fn);
}
