// The accounts of one deployment: one refresher per account document, built on first use, with Kite clients (and
// SDK clients) shared; found by name, by user_id, or by the access token a caller saw fail.
import type { S3Client } from '@aws-sdk/client-s3';
import { type BrokerConfig, tokenDigest } from '../engine/broker-config.ts';
import type { RefreshOutcome, RefreshRequest } from '../engine/refresh-engine.ts';
import { type Refresher, type RefresherSettings, refresherOn } from '../engine/refresher.ts';
import type { KiteClient } from '../kite/client.ts';
import { LazyStore } from '../lambda/lazy-store.ts';
import { StoreError } from '../shared/errors.ts';
import type { Log, LogFields } from '../shared/log.ts';
import type { ConfigStore } from '../store/config-store.ts';
import type { OpenStoreOptions, SharedClients } from '../store/open-store.ts';
import { settleEach } from './concurrency.ts';
import { listAccounts } from './listing.ts';
import { type AccountDocument, type AccountsLocation, parseAccountsLocation } from './location.ts';

export interface Account {
  /** The document key's last segment: the name callers, login links and the CLI use. */
  readonly name: string;
  /** The document's location as configured. */
  readonly uri: string;
  /** The Kite user, once a read or a refresh has shown it. */
  readonly userId: string | undefined;
  /** How logs and metrics name the account: its user_id once known, its name before. */
  readonly label: string;
  /**
   * The account a login link names: its name when the deployment keeps several documents; undefined for a single
   * document, whose links stay as they always were (the callback has only one place to store the token).
   */
  readonly linkAccount: string | undefined;
  readonly refresher: Refresher;
}

export interface AccountRegistrySettings
  extends Omit<RefresherSettings, 'configUri' | 'store' | 'kiteClients'> {
  /** BROKER_CONFIG_URI: one document, a comma-separated list, or an S3 prefix ending in "/". */
  uri: string;
  /** The setting errors name. Default BROKER_CONFIG_URI. */
  setting?: string;
  /** KMS key and bucket owner for S3 documents (the clients are shared by the registry). */
  storeOptions?: Omit<OpenStoreOptions, 'clients'>;
  /** The store for a document; default a LazyStore that opens on first use (tests pass their own). */
  openStore?: (document: AccountDocument) => ConfigStore;
  /** The S3 client a prefix is listed with; default the one the accounts' S3 stores share. */
  s3Client?: () => S3Client | Promise<S3Client>;
  /** Keys per ListObjectsV2 page (tests). */
  listPageSize?: number;
  /** How many documents a search by token or user_id reads at once. Default 8. */
  readConcurrency?: number;
}

export interface AccountRegistry {
  readonly location: AccountsLocation;
  /** The setting names one document: everything behaves, logs and answers exactly as before accounts. */
  readonly single: boolean;
  /** Every account; a prefix is listed again when `fresh` (each tick), otherwise once per container. */
  all(options?: { fresh?: boolean }): Promise<Account[]>;
  /** The account with this name, user_id or location, or undefined. */
  find(nameOrUserId: string): Promise<Account | undefined>;
  /** The account whose stored (or recently replaced) access token is this one, or undefined. */
  findByAccessToken(token: string): Promise<Account | undefined>;
}

/** A token is looked up by its digest, so no token is kept in the registry's memory. */
/** Tokens remembered per account: the current one and those it replaced in this container. */
const REMEMBERED_TOKENS = 4;

/** Adds the account to every log line of its refresher. */
function labelledLog(log: Log, label: () => string): Log {
  const withAccount = (fields?: LogFields): LogFields => ({ account: label(), ...fields });
  return {
    debug: (message, fields) => log.debug(message, withAccount(fields)),
    info: (message, fields) => log.info(message, withAccount(fields)),
    warn: (message, fields) => log.warn(message, withAccount(fields)),
    error: (message, fields) => log.error(message, withAccount(fields)),
  };
}

class AccountEntry implements Account {
  readonly name: string;
  readonly uri: string;
  readonly linkAccount: string | undefined;
  userId: string | undefined;
  readonly digests: string[] = [];
  readonly #make: (entry: AccountEntry) => Refresher;
  #refresher: Refresher | undefined;

  constructor(document: AccountDocument, single: boolean, make: (entry: AccountEntry) => Refresher) {
    this.name = document.name;
    this.uri = document.uri;
    this.linkAccount = single ? undefined : document.name;
    this.#make = make;
  }

  get label(): string {
    return this.userId || this.name;
  }

  get refresher(): Refresher {
    this.#refresher ??= this.#make(this);
    return this.#refresher;
  }
}

class Registry implements AccountRegistry {
  readonly location: AccountsLocation;
  readonly single: boolean;
  readonly #settings: AccountRegistrySettings;
  readonly #setting: string;
  readonly #kiteClients = new Map<string, KiteClient>();
  readonly #sdkClients: SharedClients = {};
  /** Entries by location, kept across listings so a refresher (and its in-flight runs) survives a re-list. */
  readonly #entries = new Map<string, AccountEntry>();
  readonly #byDigest = new Map<string, AccountEntry>();
  #current: AccountEntry[] | undefined;
  #listing: Promise<AccountEntry[]> | undefined;
  #scan: Promise<number> | undefined;

  constructor(settings: AccountRegistrySettings) {
    this.#settings = settings;
    this.#setting = settings.setting ?? 'BROKER_CONFIG_URI';
    this.location = parseAccountsLocation(settings.uri, this.#setting);
    this.single = this.location.kind === 'single';
    if (this.location.kind !== 's3-prefix') {
      const documents = this.location.kind === 'single' ? [this.location.document] : this.location.documents;
      this.#current = documents.map((document) => this.#entry(document));
    }
  }

  #entry(document: AccountDocument): AccountEntry {
    let entry = this.#entries.get(document.uri);
    if (!entry) {
      entry = new AccountEntry(document, this.single, (e) => this.#refresherFor(e, document));
      this.#entries.set(document.uri, entry);
    }
    return entry;
  }

  #refresherFor(entry: AccountEntry, document: AccountDocument): Refresher {
    const s = this.#settings;
    // One document: the store, log and clients exactly as before accounts existed.
    const store =
      s.openStore?.(document) ??
      new LazyStore(document.uri, this.#setting, {
        ...s.storeOptions,
        ...(this.single ? {} : { clients: this.#sdkClients }),
      });
    const inner = refresherOn(store, {
      ...s,
      configUri: document.uri,
      log: this.single ? s.log : labelledLog(s.log, () => entry.label),
      kiteClients: this.#kiteClients,
    });
    const refresh = async (request?: RefreshRequest): Promise<RefreshOutcome> => {
      const outcome = await inner.refresh(request);
      this.#learn(entry, outcome.config);
      return outcome;
    };
    return { ...inner, refresh };
  }

  /** Remembers what a document shows: the account's user_id and its current token's digest. */
  #learn(entry: AccountEntry, config: BrokerConfig): void {
    if (config.user_id) entry.userId = config.user_id;
    // A caller may still hold the token the last renewal replaced: the document keeps its digest.
    const replaced = (config as { replaced_token_sha256?: unknown }).replaced_token_sha256;
    if (typeof replaced === 'string' && /^[0-9a-f]{64}$/.test(replaced)) this.#byDigest.set(replaced, entry);
    if (!config.api_secret) return;
    const digest = tokenDigest(config.api_secret);
    if (entry.digests.includes(digest)) return;
    entry.digests.push(digest);
    this.#byDigest.set(digest, entry);
    while (entry.digests.length > REMEMBERED_TOKENS) {
      const old = entry.digests.shift();
      if (old !== undefined && this.#byDigest.get(old) === entry) this.#byDigest.delete(old);
    }
  }

  all(options: { fresh?: boolean } = {}): Promise<Account[]> {
    if (this.#current && !(options.fresh && this.location.kind === 's3-prefix')) {
      return Promise.resolve(this.#current);
    }
    this.#listing ??= listAccounts(this.location, {
      setting: this.#setting,
      s3Client: this.#settings.s3Client ?? (() => this.#sharedS3Client()),
      expectedBucketOwner: this.#settings.storeOptions?.expectedBucketOwner,
      ...(this.#settings.listPageSize ? { pageSize: this.#settings.listPageSize } : {}),
    })
      .then((documents) => {
        this.#current = documents.map((document) => this.#entry(document));
        return this.#current;
      })
      .finally(() => {
        this.#listing = undefined;
      });
    return this.#listing;
  }

  async #sharedS3Client(): Promise<S3Client> {
    const { createS3Client } = await import('../store/s3-store.ts');
    this.#sdkClients.s3 ??= createS3Client();
    return this.#sdkClients.s3;
  }

  /**
   * Reads every account's document once (one scan at a time, shared by concurrent callers). One unreadable document
   * does not stop the others: returns how many could not be read.
   */
  #readAll(): Promise<number> {
    this.#scan ??= (async () => {
      const accounts = (await this.all({ fresh: this.location.kind === 's3-prefix' })) as AccountEntry[];
      const reads = await settleEach(accounts, this.#settings.readConcurrency ?? 8, async (entry) => {
        const { config } = await entry.refresher.store.read();
        this.#learn(entry, config);
      });
      return reads.filter((r) => r.status === 'rejected').length;
    })().finally(() => {
      this.#scan = undefined;
    });
    return this.#scan;
  }

  /** Nothing matched, and some documents could not be read: the match may be among them, so try again later. */
  #unreadable(failed: number): never {
    throw new StoreError(
      `${failed} account document(s) could not be read, so the account was not found; try again`,
      { retryable: true },
    );
  }

  #match(key: string): AccountEntry | undefined {
    const current = this.#current ?? [];
    return (
      current.find((a) => a.name === key) ??
      current.find((a) => a.userId === key) ??
      current.find((a) => a.uri === key)
    );
  }

  async find(nameOrUserId: string): Promise<Account | undefined> {
    const key = nameOrUserId.trim();
    if (!key) return undefined;
    await this.all();
    const known = this.#match(key);
    if (known) return known;
    // A user_id not seen yet, or (for a prefix) an account added since the last listing.
    const failed = await this.#readAll();
    const found = this.#match(key);
    if (!found && failed > 0) this.#unreadable(failed);
    return found;
  }

  async findByAccessToken(token: string): Promise<Account | undefined> {
    if (!token) return undefined;
    const digest = tokenDigest(token);
    const current = await this.all();
    const remembered = this.#byDigest.get(digest);
    if (remembered && current.includes(remembered)) return remembered;
    const failed = await this.#readAll();
    const found = this.#byDigest.get(digest);
    if (found && this.#current?.includes(found)) return found;
    if (failed > 0) this.#unreadable(failed);
    return undefined;
  }
}

/** The accounts BROKER_CONFIG_URI names. Parses (and refuses) the setting now; reads and lists nothing yet. */
export function createAccountRegistry(settings: AccountRegistrySettings): AccountRegistry {
  return new Registry(settings);
}
