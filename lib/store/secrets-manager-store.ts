// broker-config.json as an AWS Secrets Manager secret, with compare-and-swap built from staging labels: a new
// version is staged under a private label, then AWSCURRENT moves to it only if it still sits on the version read.
// A little over 300 lines: the label protocol (stage, move, read back who won, sweep dead writers' labels) is one
// piece that changes together; split, each half would need the other's invariants to be read.
import { randomBytes, randomUUID } from 'node:crypto';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  type SecretsManagerClientConfig,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { type BrokerConfig, parseConfig, serializeConfig } from '../engine/broker-config.ts';
import { ConfigError, ConflictError, NotFoundError, StoreError } from '../shared/errors.ts';
import { type ClientOptions, lazyClient } from '../shared/lazy.ts';
import { awsErrorFacts, awsStoreError } from './aws-errors.ts';
import { type ConfigStore, type KeptTokens, parseKeptTokens, type StoredConfig } from './config-store.ts';

const CURRENT = 'AWSCURRENT';
/** Rescued tokens live in a version of the same secret under this label; it never moves AWSCURRENT. */
export const RESCUE_STAGE = 'KTR_RESCUE';
/** Prefix of the per-write label a new version carries until AWSCURRENT has moved to it (or the write lost). */
export const PENDING_STAGE_PREFIX = 'KTR_PENDING_';
/**
 * A writer that crashed between staging and cleanup leaves its label behind, and a secret may carry only 20 labels.
 * Labels older than the longest a Lambda can run belong to dead writers and may be swept.
 */
const PENDING_STALE_MS = 15 * 60 * 1000;

/** A ready client (tests pass one pointed at the emulator), or config to build one from on first use. */
export interface SecretsManagerStoreOptions
  extends ClientOptions<SecretsManagerClient, SecretsManagerClientConfig> {
  /** The secret's name or ARN. */
  secretId: string;
}

/**
 * The SDK already honours AWS_ENDPOINT_URL_SECRETS_MANAGER and AWS_ENDPOINT_URL, the region chain and the
 * standard retry strategy (which retries throttling, 5xx and connection errors), so nothing is added here.
 */
export function createSecretsManagerClient(config: SecretsManagerClientConfig = {}): SecretsManagerClient {
  return new SecretsManagerClient(config);
}

function isNotFound(e: unknown): boolean {
  return awsErrorFacts(e).name === 'ResourceNotFoundException';
}

/** The version AWSCURRENT sits on, if any. */
function currentVersion(stages: Map<string, string[]> | null): string | undefined {
  return [...(stages ?? [])].find(([, labels]) => labels.includes(CURRENT))?.[0];
}

function pendingStage(): string {
  return `${PENDING_STAGE_PREFIX}${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

function pendingStageAgeMs(stage: string, now: number): number | undefined {
  if (!stage.startsWith(PENDING_STAGE_PREFIX)) return undefined;
  const stamp = stage.slice(PENDING_STAGE_PREFIX.length).split('_')[0] ?? '';
  const createdAt = Number.parseInt(stamp, 36);
  return Number.isFinite(createdAt) ? now - createdAt : undefined;
}

export class SecretsManagerStore implements ConfigStore {
  readonly location: string;
  readonly secretId: string;
  readonly #client: () => SecretsManagerClient;

  constructor(options: SecretsManagerStoreOptions) {
    if (!options.secretId) throw new ConfigError('secret id must not be empty', { field: 'secretId' });
    this.secretId = options.secretId;
    this.location = `secretsmanager://${options.secretId}`;
    this.#client = lazyClient(options, createSecretsManagerClient);
  }

  async read(): Promise<StoredConfig> {
    let answer: { SecretString?: string | undefined; VersionId?: string | undefined };
    try {
      answer = await this.#client().send(
        new GetSecretValueCommand({ SecretId: this.secretId, VersionStage: CURRENT }),
      );
    } catch (e: unknown) {
      if (isNotFound(e)) throw new NotFoundError(`${this.location} does not exist or has no current value`);
      throw awsStoreError('GetSecretValue', this.location, e);
    }
    if (answer.SecretString === undefined) {
      throw new ConfigError(`${this.location}: the secret holds a binary value, not broker config JSON`, {
        field: '(document)',
      });
    }
    if (!answer.VersionId) {
      throw new StoreError(`${this.location}: GetSecretValue answered without a VersionId`, {
        retryable: false,
      });
    }
    return { config: parseConfig(answer.SecretString, this.location), version: answer.VersionId };
  }

  async write(config: BrokerConfig, expectedVersion: string | null): Promise<string> {
    const text = serializeConfig(config);
    return expectedVersion === null ? this.#create(text) : this.#stageAndPromote(text, expectedVersion);
  }

  async saveRescue(tokens: KeptTokens): Promise<void> {
    // The first version of a secret becomes AWSCURRENT whatever its labels: never let rescued tokens be that.
    const stages = await this.#versionStages();
    if (currentVersion(stages) === undefined) {
      throw new StoreError(`${this.location} has no current document to keep rescued tokens beside`, {
        retryable: false,
      });
    }
    try {
      await this.#put(`${JSON.stringify(tokens)}\n`, RESCUE_STAGE);
    } catch (e: unknown) {
      if (e instanceof NotFoundError) throw new StoreError(e.message, { retryable: false, cause: e });
      throw e;
    }
  }

  async loadRescue(): Promise<KeptTokens | null> {
    let answer: { SecretString?: string | undefined };
    try {
      answer = await this.#client().send(
        new GetSecretValueCommand({ SecretId: this.secretId, VersionStage: RESCUE_STAGE }),
      );
    } catch (e: unknown) {
      // Both "no such secret" and "no version carries that label" arrive as ResourceNotFoundException.
      if (isNotFound(e)) return null;
      throw awsStoreError('GetSecretValue', this.location, e);
    }
    if (answer.SecretString === undefined) return null;
    return parseKeptTokens(answer.SecretString, `${this.location} (${RESCUE_STAGE})`);
  }

  async clearRescue(): Promise<void> {
    const stages = await this.#versionStages();
    for (const [versionId, labels] of stages ?? []) {
      if (!labels.includes(RESCUE_STAGE)) continue;
      try {
        await this.#moveStage(RESCUE_STAGE, { remove: versionId });
      } catch (e: unknown) {
        // The label moved to a newer rescue meanwhile: those tokens are not stored yet, so they stay.
        const name = awsErrorFacts(e).name;
        if (name === 'InvalidParameterException' || name === 'ResourceNotFoundException') return;
        throw awsStoreError('UpdateSecretVersionStage', this.location, e);
      }
    }
  }

  /** CreateSecret; when the secret exists but has no value yet (made empty by infrastructure), fill it once. */
  async #create(text: string): Promise<string> {
    if (this.secretId.startsWith('arn:')) {
      // An ARN carries a random suffix Secrets Manager chooses, so it cannot name a secret that does not exist.
      const existing = await this.#versionStages();
      if (existing === null) {
        const message = `${this.location} does not exist; a secret addressed by ARN must be created first`;
        throw new StoreError(message, { retryable: false });
      }
      return this.#fillEmpty(text, existing);
    }
    const token = randomUUID();
    try {
      const answer = await this.#client().send(
        new CreateSecretCommand({ Name: this.secretId, SecretString: text, ClientRequestToken: token }),
      );
      return answer.VersionId ?? token;
    } catch (e: unknown) {
      if (awsErrorFacts(e).name !== 'ResourceExistsException')
        throw awsStoreError('CreateSecret', this.location, e);
    }
    const existing = await this.#versionStages();
    if (existing === null) throw new ConflictError(`${this.location} changed while it was being created`);
    // A retried CreateSecret whose first attempt landed reports "exists": the version under our token is ours.
    if (existing.has(token)) return token;
    return this.#fillEmpty(text, existing);
  }

  async #fillEmpty(text: string, stages: Map<string, string[]>): Promise<string> {
    if (currentVersion(stages) !== undefined) {
      throw new ConflictError(`${this.location} already exists`);
    }
    // No RemoveFromVersionId: the move fails if another creator's version became current first.
    return this.#stageAndPromote(text, undefined);
  }

  /**
   * Stages the document as a new version under a private label, then moves AWSCURRENT to it from
   * `expectedVersion`. Secrets Manager refuses the move when AWSCURRENT is on any other version, which makes it a
   * compare-and-swap. The private label is always removed afterwards; a losing version is left with no labels,
   * which Secrets Manager treats as deprecated and deletes in time.
   */
  async #stageAndPromote(text: string, expectedVersion: string | undefined): Promise<string> {
    const stage = pendingStage();
    let newVersion: string;
    try {
      newVersion = await this.#put(text, stage);
    } catch (e: unknown) {
      if (e instanceof NotFoundError) {
        throw new ConflictError(`${this.location} no longer exists`, { cause: e });
      }
      throw e;
    }
    try {
      await this.#moveStage(CURRENT, { move: newVersion, remove: expectedVersion });
      return newVersion;
    } catch (e: unknown) {
      return await this.#settle(e, newVersion, expectedVersion);
    } finally {
      await this.#removeStage(stage, newVersion);
    }
  }

  /** After a failed move, the labels say what happened: ours is current, someone else's is, or neither changed. */
  async #settle(e: unknown, newVersion: string, expectedVersion: string | undefined): Promise<string> {
    let stages: Map<string, string[]> | null;
    try {
      stages = await this.#versionStages();
    } catch {
      // Without the labels the move's answer must do: InvalidParameterException is the compare failing, a conflict.
      if (awsErrorFacts(e).name !== 'InvalidParameterException')
        throw awsStoreError('UpdateSecretVersionStage', this.location, e);
      throw new ConflictError(`${this.location} changed since it was read`, { cause: e });
    }
    const current = currentVersion(stages);
    // A retried move whose first attempt landed, after which the SDK gave up on a lost answer.
    if (current === newVersion) return newVersion;
    if (stages === null || current !== expectedVersion) {
      throw new ConflictError(`${this.location} changed since it was read`, { cause: e });
    }
    throw awsStoreError('UpdateSecretVersionStage', this.location, e);
  }

  /** PutSecretValue under one private label, so AWSCURRENT stays where it is. Returns the new VersionId. */
  async #put(text: string, stage: string): Promise<string> {
    const token = randomUUID();
    const input = {
      SecretId: this.secretId,
      ClientRequestToken: token,
      SecretString: text,
      VersionStages: [stage],
    };
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.#client().send(new PutSecretValueCommand(input))).VersionId ?? token;
      } catch (e: unknown) {
        if (isNotFound(e)) throw new NotFoundError(`${this.location} does not exist`);
        // Out of labels: those of dead writers may be in the way. Sweep them and try once more.
        const outOfLabels = attempt === 1 && awsErrorFacts(e).name === 'LimitExceededException';
        if (!outOfLabels || !(await this.#sweepStalePending())) {
          throw awsStoreError('PutSecretValue', this.location, e);
        }
      }
    }
  }

  /** Removes pending labels dead writers left behind. True when any was removed. */
  async #sweepStalePending(): Promise<boolean> {
    const stages = await this.#versionStages();
    if (stages === null) return false;
    const now = Date.now();
    let removed = false;
    for (const [versionId, labels] of stages) {
      for (const label of labels) {
        const age = pendingStageAgeMs(label, now);
        if (age !== undefined && age > PENDING_STALE_MS) {
          removed = (await this.#removeStage(label, versionId)) || removed;
        }
      }
    }
    return removed;
  }

  /** Best effort: a label left behind is swept later, and must not turn a finished write into a failure. */
  async #removeStage(stage: string, versionId: string): Promise<boolean> {
    try {
      await this.#moveStage(stage, { remove: versionId });
      return true;
    } catch {
      return false;
    }
  }

  /** Version id → its labels; null when the secret does not exist. */
  async #versionStages(): Promise<Map<string, string[]> | null> {
    try {
      const answer = await this.#client().send(new DescribeSecretCommand({ SecretId: this.secretId }));
      return new Map(Object.entries(answer.VersionIdsToStages ?? {}));
    } catch (e: unknown) {
      if (isNotFound(e)) return null;
      throw awsStoreError('DescribeSecret', this.location, e);
    }
  }

  /** Moves a label to `move`, or off `remove`, or both at once (which is Secrets Manager's compare-and-swap). */
  async #moveStage(stage: string, versions: { move?: string; remove?: string | undefined }): Promise<void> {
    await this.#client().send(
      new UpdateSecretVersionStageCommand({
        SecretId: this.secretId,
        VersionStage: stage,
        MoveToVersionId: versions.move,
        RemoveFromVersionId: versions.remove,
      }),
    );
  }
}
