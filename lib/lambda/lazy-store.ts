// A store that opens on first use. The login callback turns many requests away (a bad state, a cancelled login)
// before it reads anything; with this, those cold starts never load the store's SDK client.
import type { BrokerConfig } from '../engine/broker-config.ts';
import type { ConfigStore, KeptTokens, StoredConfig } from '../store/config-store.ts';
import { type OpenStoreOptions, openStore, parseStoreLocation } from '../store/open-store.ts';

export class LazyStore implements ConfigStore {
  readonly #uri: string;
  readonly #setting: string;
  readonly #options: OpenStoreOptions;
  #opened: ConfigStore | undefined;
  #opening: Promise<ConfigStore> | undefined;

  /** Checks the location now (a bad one fails the cold start); opens the store on the first call. */
  constructor(uri: string, setting: string, options: OpenStoreOptions = {}) {
    parseStoreLocation(uri, setting);
    this.#uri = uri;
    this.#setting = setting;
    this.#options = options;
  }

  /** The opened store's location; before it is opened, the same string worked out from the setting. */
  get location(): string {
    if (this.#opened) return this.#opened.location;
    const location = parseStoreLocation(this.#uri, this.#setting);
    return location.kind === 'file' ? location.path : this.#uri.trim();
  }

  #store(): Promise<ConfigStore> {
    if (!this.#opening) {
      const opening = openStore(this.#uri, this.#setting, this.#options);
      this.#opening = opening;
      opening.then(
        (store) => {
          this.#opened = store;
        },
        () => {
          // A failed open (e.g. a chunk that could not load) is tried again on the next call.
          if (this.#opening === opening) this.#opening = undefined;
        },
      );
    }
    return this.#opening;
  }

  async read(): Promise<StoredConfig> {
    return (await this.#store()).read();
  }

  async write(config: BrokerConfig, expectedVersion: string | null): Promise<string> {
    return (await this.#store()).write(config, expectedVersion);
  }

  async saveRescue(tokens: KeptTokens): Promise<void> {
    return (await this.#store()).saveRescue(tokens);
  }

  async loadRescue(): Promise<KeptTokens | null> {
    return (await this.#store()).loadRescue();
  }

  async clearRescue(): Promise<void> {
    return (await this.#store()).clearRescue();
  }
}
