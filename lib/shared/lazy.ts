// The one way SDK clients are made: a caller may hand over a ready client (tests point one at loopback) or the
// config to build one from, and the client is built on first use, so a cold start that never calls AWS pays nothing.

/** A value made on first call and kept. */
export function lazy<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => {
    made ??= { value: make() };
    return made.value;
  };
}

/** A promise made on first call and kept once it resolves; a failed attempt is forgotten, so the next call tries again. */
export function lazyAsync<T>(make: () => Promise<T>): () => Promise<T> {
  let kept: Promise<T> | undefined;
  return () => {
    if (!kept) {
      const making = make();
      kept = making;
      making.catch(() => {
        if (kept === making) kept = undefined;
      });
    }
    return kept;
  };
}

/** What a store or publisher accepts for its SDK client (Powertools BaseProvider style). */
export interface ClientOptions<Client, Config> {
  /** A ready client, used as is. */
  client?: Client | undefined;
  /** Config to build the client from on first use, when no client is given. */
  clientConfig?: Config | undefined;
}

/** The given client, or one built lazily from the given config. */
export function lazyClient<Client, Config>(
  options: ClientOptions<Client, Config>,
  build: (config: Config | undefined) => Client,
): () => Client {
  const ready = options.client;
  return ready ? () => ready : lazy(() => build(options.clientConfig));
}
