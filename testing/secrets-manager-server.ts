// An in-memory AWS Secrets Manager on loopback that speaks the real wire protocol (awsJson1_1), so the SDK client
// can be tested unmodified: versions, staging labels, idempotency tokens, quotas and AWS's error shapes.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { listenOnLoopback, readBoundedBody } from './loopback.ts';

const ACCOUNT_ID = '000000000000';
const CURRENT = 'AWSCURRENT';
const PREVIOUS = 'AWSPREVIOUS';
/** Secrets Manager's documented quotas. */
const MAX_SECRET_BYTES = 65_536;
const MAX_LABELS_PER_SECRET = 20;
const MAX_VERSIONS = 100;
const MAX_BODY_BYTES = 1024 * 1024;
const NAME_PATTERN = /^[A-Za-z0-9/_+=.@-]+$/;

export interface FaultSpec {
  /** Only requests for this operation (e.g. "PutSecretValue"); every operation when omitted. */
  operation?: string;
  /** How many matching requests fail before the fault is used up. */
  times: number;
  status: number;
  /** The `__type`, e.g. "ThrottlingException" or "InternalServiceError". */
  type: string;
  message?: string;
  /** Holds the failing response back this long, to look like a slow service. */
  delayMs?: number;
  /** Carry the request out and fail only the answer, as when a response is lost after AWS acted on it. */
  afterApply?: boolean;
}

export interface RequestRecord {
  operation: string;
  status: number;
}

export interface SecretsManagerEmulator {
  /** http://127.0.0.1:<port>, for the client's `endpoint`. */
  readonly endpoint: string;
  readonly region: string;
  /** Every request answered, in order. */
  readonly requests: RequestRecord[];
  resetRequests(): void;
  /** Creates a secret whose first version (AWSCURRENT) holds `value`, bypassing the protocol. */
  createSecret(name: string, value: string): { arn: string; versionId: string };
  /** The full ARN (with its random suffix) of a secret, by name. */
  arnOf(name: string): string;
  /** The AWSCURRENT SecretString, or undefined when the secret or its current version is missing. */
  currentValue(name: string): string | undefined;
  /** versionId → staging labels for every version still kept, including deprecated ones (no labels). */
  labels(name: string): Record<string, string[]>;
  injectFault(fault: FaultSpec): void;
  clearFaults(): void;
  /** Delays every response by `ms`. */
  setLatency(ms: number): void;
  /** Forgets all secrets, faults, latency and the request log. */
  reset(): void;
  close(): Promise<void>;
}

interface Version {
  id: string;
  secretString: string | undefined;
  /** Base64, exactly as it came over the wire. */
  secretBinary: string | undefined;
  stages: Set<string>;
  created: Date;
}

interface Secret {
  name: string;
  arn: string;
  description: string | undefined;
  created: Date;
  changed: Date;
  deletedAt: Date | undefined;
  /** Insertion order is creation order. */
  versions: Map<string, Version>;
}

type Json = Record<string, unknown>;

/** An AWS error response: `{"__type", "message"}` with its HTTP status. */
class AwsError extends Error {
  readonly type: string;
  readonly status: number;
  constructor(type: string, message: string, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

const notFound = () =>
  new AwsError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
const markedForDeletion = () =>
  new AwsError(
    'InvalidRequestException',
    "You can't perform this operation on the secret because it was marked for deletion.",
  );

function validation(member: string, constraint: string): AwsError {
  return new AwsError(
    'ValidationException',
    `1 validation error detected: Value at '${member}' failed to satisfy constraint: ${constraint}`,
  );
}

function epochSeconds(date: Date): number {
  return date.getTime() / 1000;
}

/** Six characters, as Secrets Manager appends to every ARN so a re-created name gets a new ARN. */
function arnSuffix(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(randomBytes(6), (b) => alphabet[b % alphabet.length]).join('');
}

/** Reads an optional string member, with the model's length bounds. A wrong JSON type is a serialization error. */
function optionalString(body: Json, key: string, min: number, max: number): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    throw new AwsError('SerializationException', `Unexpected value type for member ${key}`);
  }
  const member = key.charAt(0).toLowerCase() + key.slice(1);
  if (value.length < min) {
    throw validation(member, `Member must have length greater than or equal to ${min}`);
  }
  if (value.length > max) {
    throw validation(member, `Member must have length less than or equal to ${max}`);
  }
  return value;
}

function requiredString(body: Json, key: string, min: number, max: number): string {
  const value = optionalString(body, key, min, max);
  if (value === undefined) {
    const member = key.charAt(0).toLowerCase() + key.slice(1);
    throw new AwsError(
      'ValidationException',
      `1 validation error detected: Value null at '${member}' failed to satisfy constraint: Member must not be null`,
    );
  }
  return value;
}

function optionalBoolean(body: Json, key: string): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') {
    throw new AwsError('SerializationException', `Unexpected value type for member ${key}`);
  }
  return value;
}

function optionalStages(body: Json): string[] | undefined {
  const value = body.VersionStages;
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((s) => typeof s !== 'string')) {
    throw new AwsError('SerializationException', 'Unexpected value type for member VersionStages');
  }
  const stages = value as string[];
  if (stages.length < 1 || stages.length > 20) {
    throw validation('versionStages', 'Member must have length between 1 and 20');
  }
  for (const stage of stages) {
    if (stage.length < 1 || stage.length > 256) {
      throw validation('versionStages', 'Member must have length between 1 and 256');
    }
  }
  return [...new Set(stages)];
}

/** SecretString / SecretBinary, at most one of them, within the 64 KiB quota. */
function secretValue(body: Json): { secretString: string | undefined; secretBinary: string | undefined } {
  const secretString = optionalString(body, 'SecretString', 0, Number.POSITIVE_INFINITY);
  const secretBinary = optionalString(body, 'SecretBinary', 0, Number.POSITIVE_INFINITY);
  if (secretString !== undefined && secretBinary !== undefined) {
    throw new AwsError(
      'InvalidParameterException',
      "You can't specify both a binary secret value and a string secret value in the same secret.",
    );
  }
  // Secrets Manager counts bytes: a multi-byte string hits the quota before 65,536 characters.
  if (secretString !== undefined && Buffer.byteLength(secretString, 'utf8') > MAX_SECRET_BYTES) {
    throw validation('secretString', `Member must have length less than or equal to ${MAX_SECRET_BYTES}`);
  }
  if (secretBinary !== undefined && Buffer.from(secretBinary, 'base64').length > MAX_SECRET_BYTES) {
    throw validation('secretBinary', `Member must have length less than or equal to ${MAX_SECRET_BYTES}`);
  }
  return { secretString, secretBinary };
}

function holderOf(secret: Secret, stage: string): Version | undefined {
  for (const version of secret.versions.values()) if (version.stages.has(stage)) return version;
  return undefined;
}

function labelCount(secret: Secret): number {
  let count = 0;
  for (const version of secret.versions.values()) count += version.stages.size;
  return count;
}

/** Moves `stage` onto `target`; moving AWSCURRENT hands AWSPREVIOUS to the version it left, as AWS does. */
function attachStage(secret: Secret, stage: string, target: Version): void {
  const holder = holderOf(secret, stage);
  if (holder === target) return;
  holder?.stages.delete(stage);
  target.stages.add(stage);
  if (stage === CURRENT && holder) {
    holderOf(secret, PREVIOUS)?.stages.delete(PREVIOUS);
    holder.stages.add(PREVIOUS);
  }
}

function snapshotStages(secret: Secret): Map<Version, Set<string>> {
  return new Map([...secret.versions.values()].map((v) => [v, new Set(v.stages)]));
}

function restoreStages(snapshot: Map<Version, Set<string>>): void {
  for (const [version, stages] of snapshot) version.stages = stages;
}

/** Applies a label change, undoing it when the secret would then carry more labels than the quota allows. */
function withinLabelQuota(secret: Secret, change: () => void): void {
  const before = snapshotStages(secret);
  change();
  if (labelCount(secret) > MAX_LABELS_PER_SECRET) {
    restoreStages(before);
    throw new AwsError(
      'LimitExceededException',
      `You can't attach more than ${MAX_LABELS_PER_SECRET} staging labels across the versions of a secret.`,
    );
  }
}

/** AWS drops deprecated (unlabelled) versions once a secret holds more than about 100. */
function pruneVersions(secret: Secret): void {
  for (const version of [...secret.versions.values()]) {
    if (secret.versions.size <= MAX_VERSIONS) return;
    if (version.stages.size === 0) secret.versions.delete(version.id);
  }
}

function versionOut(version: Version): Json {
  return {
    VersionId: version.id,
    VersionStages: [...version.stages],
    CreatedDate: epochSeconds(version.created),
  };
}

/** Moves a label to `target`. The caller must name where the label is now: that makes the move a compare-and-swap. */
function moveStage(secret: Secret, stage: string, target: Version, removeFrom: string | undefined): void {
  const holder = holderOf(secret, stage);
  if (holder && holder !== target) {
    if (removeFrom === undefined) {
      throw new AwsError(
        'InvalidParameterException',
        `The parameter RemoveFromVersionId can't be empty. Staging label ${stage} is currently attached to version ${holder.id}, so you must explicitly reference that version in RemoveFromVersionId.`,
      );
    }
    if (removeFrom !== holder.id) {
      throw new AwsError(
        'InvalidParameterException',
        `The staging label ${stage} is currently attached to version ${holder.id}, not to version ${removeFrom} named in RemoveFromVersionId.`,
      );
    }
  } else if (!holder && removeFrom !== undefined) {
    throw new AwsError(
      'InvalidParameterException',
      `The staging label ${stage} is not attached to version ${removeFrom}.`,
    );
  }
  withinLabelQuota(secret, () => attachStage(secret, stage, target));
}

/** Takes a label off the version named; AWSCURRENT can only be moved, never removed. */
function removeStage(secret: Secret, stage: string, removeFrom: string | undefined): void {
  if (removeFrom === undefined) {
    throw new AwsError(
      'InvalidParameterException',
      'You must specify MoveToVersionId, RemoveFromVersionId, or both.',
    );
  }
  const holder = holderOf(secret, stage);
  if (holder?.id !== removeFrom) {
    throw new AwsError(
      'InvalidParameterException',
      `The staging label ${stage} is not attached to version ${removeFrom}.`,
    );
  }
  if (stage === CURRENT) {
    throw new AwsError(
      'InvalidParameterException',
      `You can't remove the staging label ${CURRENT} without moving it to another version with MoveToVersionId.`,
    );
  }
  holder.stages.delete(stage);
}

class SecretsManagerState {
  readonly region: string;
  readonly secrets = new Map<string, Secret>();

  constructor(region: string) {
    this.region = region;
  }

  /** By name, full ARN, or partial ARN (without the random suffix). */
  find(secretId: string): Secret | undefined {
    if (!secretId.startsWith('arn:')) return this.secrets.get(secretId);
    for (const secret of this.secrets.values()) {
      if (secret.arn === secretId || secret.arn.slice(0, -7) === secretId) return secret;
    }
    return undefined;
  }

  /** A secret that exists and is not scheduled for deletion. */
  live(secretId: string): Secret {
    const secret = this.find(secretId);
    if (!secret) throw notFound();
    if (secret.deletedAt) throw markedForDeletion();
    return secret;
  }

  newSecret(name: string, description: string | undefined): Secret {
    const now = new Date();
    const secret: Secret = {
      name,
      arn: `arn:aws:secretsmanager:${this.region}:${ACCOUNT_ID}:secret:${name}-${arnSuffix()}`,
      description,
      created: now,
      changed: now,
      deletedAt: undefined,
      versions: new Map(),
    };
    this.secrets.set(name, secret);
    return secret;
  }

  addVersion(secret: Secret, id: string, value: Pick<Version, 'secretString' | 'secretBinary'>): Version {
    const version: Version = { id, ...value, stages: new Set(), created: new Date() };
    secret.versions.set(id, version);
    secret.changed = version.created;
    return version;
  }

  createSecret(body: Json): Json {
    const name = requiredString(body, 'Name', 1, 512);
    if (!NAME_PATTERN.test(name)) {
      throw new AwsError(
        'InvalidParameterException',
        'Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!',
      );
    }
    const token = optionalString(body, 'ClientRequestToken', 32, 64) ?? randomUUID();
    const description = optionalString(body, 'Description', 0, 2048);
    const value = secretValue(body);
    const existing = this.secrets.get(name);
    if (existing?.deletedAt) {
      throw new AwsError(
        'InvalidRequestException',
        "You can't create this secret because a secret with this name is already scheduled for deletion.",
      );
    }
    if (existing) {
      throw new AwsError(
        'ResourceExistsException',
        `The operation failed because the secret ${name} already exists.`,
      );
    }
    const secret = this.newSecret(name, description);
    const out: Json = { ARN: secret.arn, Name: secret.name };
    if (value.secretString !== undefined || value.secretBinary !== undefined) {
      this.addVersion(secret, token, value).stages.add(CURRENT);
      out.VersionId = token;
    }
    return out;
  }

  getSecretValue(body: Json): Json {
    const secret = this.live(requiredString(body, 'SecretId', 1, 2048));
    const versionId = optionalString(body, 'VersionId', 32, 64);
    const stage = optionalString(body, 'VersionStage', 1, 256);
    let version: Version | undefined;
    if (versionId !== undefined) {
      version = secret.versions.get(versionId);
      if (!version || (stage !== undefined && !version.stages.has(stage))) {
        throw new AwsError(
          'ResourceNotFoundException',
          `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`,
        );
      }
    } else {
      const label = stage ?? CURRENT;
      version = holderOf(secret, label);
      if (!version) {
        throw new AwsError(
          'ResourceNotFoundException',
          `Secrets Manager can't find the specified secret value for staging label: ${label}`,
        );
      }
    }
    const out: Json = { ARN: secret.arn, Name: secret.name, ...versionOut(version) };
    if (version.secretString !== undefined) out.SecretString = version.secretString;
    if (version.secretBinary !== undefined) out.SecretBinary = version.secretBinary;
    return out;
  }

  putSecretValue(body: Json): Json {
    const secret = this.live(requiredString(body, 'SecretId', 1, 2048));
    const token = optionalString(body, 'ClientRequestToken', 32, 64) ?? randomUUID();
    const value = secretValue(body);
    const stages = optionalStages(body);
    if (value.secretString === undefined && value.secretBinary === undefined) {
      throw new AwsError('InvalidRequestException', 'You must provide either SecretString or SecretBinary.');
    }
    const existing = secret.versions.get(token);
    if (existing) {
      // The token makes retries safe: the same request again is a no-op, a different value under it is refused.
      if (existing.secretString !== value.secretString || existing.secretBinary !== value.secretBinary) {
        throw new AwsError(
          'ResourceExistsException',
          "You can't modify an existing version, you can only create a new version.",
        );
      }
      return {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: existing.id,
        VersionStages: [...existing.stages],
      };
    }
    const isFirst = secret.versions.size === 0;
    const version = this.addVersion(secret, token, value);
    try {
      withinLabelQuota(secret, () => {
        // Without VersionStages the new version becomes current; with them only those labels move, except that
        // a secret's very first version is always current.
        for (const stage of stages ?? [CURRENT]) attachStage(secret, stage, version);
        if (isFirst) version.stages.add(CURRENT);
      });
    } catch (e: unknown) {
      secret.versions.delete(version.id);
      throw e;
    }
    pruneVersions(secret);
    return { ARN: secret.arn, Name: secret.name, VersionId: version.id, VersionStages: [...version.stages] };
  }

  updateSecretVersionStage(body: Json): Json {
    const secret = this.live(requiredString(body, 'SecretId', 1, 2048));
    const stage = requiredString(body, 'VersionStage', 1, 256);
    const removeFrom = optionalString(body, 'RemoveFromVersionId', 32, 64);
    const moveTo = optionalString(body, 'MoveToVersionId', 32, 64);
    for (const id of [removeFrom, moveTo]) {
      if (id !== undefined && !secret.versions.has(id)) {
        throw new AwsError(
          'ResourceNotFoundException',
          `Secrets Manager can't find the specified secret version: ${id}`,
        );
      }
    }
    if (moveTo !== undefined) moveStage(secret, stage, secret.versions.get(moveTo) as Version, removeFrom);
    else removeStage(secret, stage, removeFrom);
    secret.changed = new Date();
    return { ARN: secret.arn, Name: secret.name };
  }

  describeSecret(body: Json): Json {
    const secret = this.find(requiredString(body, 'SecretId', 1, 2048));
    if (!secret) throw notFound();
    const stages: Record<string, string[]> = {};
    for (const version of secret.versions.values()) {
      if (version.stages.size > 0) stages[version.id] = [...version.stages];
    }
    const out: Json = {
      ARN: secret.arn,
      Name: secret.name,
      CreatedDate: epochSeconds(secret.created),
      LastChangedDate: epochSeconds(secret.changed),
      VersionIdsToStages: stages,
    };
    if (secret.description !== undefined) out.Description = secret.description;
    if (secret.deletedAt) out.DeletedDate = epochSeconds(secret.deletedAt);
    return out;
  }

  listSecretVersionIds(body: Json): Json {
    const secret = this.find(requiredString(body, 'SecretId', 1, 2048));
    if (!secret) throw notFound();
    const includeDeprecated = optionalBoolean(body, 'IncludeDeprecated') ?? false;
    const versions = [...secret.versions.values()]
      .filter((v) => includeDeprecated || v.stages.size > 0)
      .reverse()
      .map(versionOut);
    return { ARN: secret.arn, Name: secret.name, Versions: versions };
  }

  deleteSecret(body: Json): Json {
    const secret = this.find(requiredString(body, 'SecretId', 1, 2048));
    if (!secret) throw notFound();
    const force = optionalBoolean(body, 'ForceDeleteWithoutRecovery') ?? false;
    const windowValue = body.RecoveryWindowInDays;
    if (windowValue !== undefined && (typeof windowValue !== 'number' || !Number.isInteger(windowValue))) {
      throw new AwsError('SerializationException', 'Unexpected value type for member RecoveryWindowInDays');
    }
    if (force && windowValue !== undefined) {
      throw new AwsError(
        'InvalidParameterException',
        "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
      );
    }
    const days = windowValue ?? 30;
    if (!force && (days < 7 || days > 30)) {
      throw new AwsError(
        'InvalidParameterException',
        'The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).',
      );
    }
    const now = new Date();
    if (force) {
      this.secrets.delete(secret.name);
      return { ARN: secret.arn, Name: secret.name, DeletionDate: epochSeconds(now) };
    }
    if (secret.deletedAt) throw markedForDeletion();
    secret.deletedAt = now;
    return {
      ARN: secret.arn,
      Name: secret.name,
      DeletionDate: epochSeconds(new Date(now.getTime() + days * 86_400_000)),
    };
  }

  restoreSecret(body: Json): Json {
    const secret = this.find(requiredString(body, 'SecretId', 1, 2048));
    if (!secret) throw notFound();
    secret.deletedAt = undefined;
    return { ARN: secret.arn, Name: secret.name };
  }

  dispatch(operation: string, body: Json): Json {
    switch (operation) {
      case 'CreateSecret':
        return this.createSecret(body);
      case 'GetSecretValue':
        return this.getSecretValue(body);
      case 'PutSecretValue':
        return this.putSecretValue(body);
      case 'UpdateSecretVersionStage':
        return this.updateSecretVersionStage(body);
      case 'DescribeSecret':
        return this.describeSecret(body);
      case 'ListSecretVersionIds':
        return this.listSecretVersionIds(body);
      case 'DeleteSecret':
        return this.deleteSecret(body);
      case 'RestoreSecret':
        return this.restoreSecret(body);
      default:
        throw new AwsError('UnknownOperationException', `Operation ${operation} is not supported.`);
    }
  }
}

function operationOf(req: IncomingMessage): string {
  const target = req.headers['x-amz-target'];
  return typeof target === 'string' && target.startsWith('secretsmanager.')
    ? target.slice('secretsmanager.'.length)
    : '(unknown)';
}

function parseJsonBody(body: Buffer): Json {
  let parsed: unknown;
  try {
    parsed = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
  } catch {
    throw new AwsError('SerializationException', 'Start of structure or map found where not expected.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new AwsError('SerializationException', 'Start of structure or map found where not expected.');
  }
  return parsed as Json;
}

async function failWith(fault: FaultSpec): Promise<never> {
  if (fault.delayMs) await sleep(fault.delayMs);
  throw new AwsError(fault.type, fault.message ?? `Injected ${fault.type}`, fault.status);
}

interface EmulatorState {
  secrets: SecretsManagerState;
  requests: RequestRecord[];
  faults: FaultSpec[];
  latencyMs: number;
}

function takeFault(state: EmulatorState, operation: string): FaultSpec | undefined {
  const fault = state.faults.find(
    (f) => f.times > 0 && (f.operation === undefined || f.operation === operation),
  );
  if (fault) fault.times -= 1;
  state.faults = state.faults.filter((f) => f.times > 0);
  return fault;
}

/** Runs one request. A fault fails it before the operation applies, or after when `afterApply` is set. */
async function answerTo(
  state: EmulatorState,
  req: IncomingMessage,
  operation: string,
): Promise<{ status: number; payload: Json }> {
  try {
    const body = await readBoundedBody(req, MAX_BODY_BYTES);
    if (body === null) throw new AwsError('SerializationException', 'Request body is too large.', 413);
    if (req.method !== 'POST' || req.url !== '/' || operation === '(unknown)') {
      throw new AwsError('UnknownOperationException', 'The requested operation is not recognized.');
    }
    if (!req.headers.authorization) {
      throw new AwsError('MissingAuthenticationTokenException', 'Request is missing Authentication Token');
    }
    const fault = takeFault(state, operation);
    if (fault && !fault.afterApply) await failWith(fault);
    const payload = state.secrets.dispatch(operation, parseJsonBody(body));
    if (fault) await failWith(fault);
    return { status: 200, payload };
  } catch (e: unknown) {
    const error = e instanceof AwsError ? e : new AwsError('InternalServiceError', 'An error occurred.', 500);
    return { status: error.status, payload: { __type: error.type, message: error.message } };
  }
}

async function handle(state: EmulatorState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const operation = operationOf(req);
  const { status, payload } = await answerTo(state, req, operation);
  if (state.latencyMs > 0) await sleep(state.latencyMs);
  const text = JSON.stringify(payload);
  state.requests.push({ operation, status });
  res.writeHead(status, {
    'Content-Type': 'application/x-amz-json-1.1',
    'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': randomUUID(),
  });
  res.end(text);
}

export async function startSecretsManagerEmulator(
  options: { port?: number; region?: string } = {},
): Promise<SecretsManagerEmulator> {
  const emulator: EmulatorState = {
    secrets: new SecretsManagerState(options.region ?? 'ap-south-1'),
    requests: [],
    faults: [],
    latencyMs: 0,
  };
  const { secrets: state, requests } = emulator;

  const server = createServer((req, res) => {
    handle(emulator, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  const port = await listenOnLoopback(server, options.port);

  function existing(name: string): Secret {
    const secret = state.find(name);
    if (!secret) throw new Error(`no secret named ${name}`);
    return secret;
  }

  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: state.region,
    requests,
    resetRequests() {
      requests.length = 0;
    },
    createSecret(name, value) {
      if (state.find(name)) throw new Error(`secret ${name} already exists`);
      const secret = state.newSecret(name, undefined);
      const versionId = randomUUID();
      state
        .addVersion(secret, versionId, { secretString: value, secretBinary: undefined })
        .stages.add(CURRENT);
      return { arn: secret.arn, versionId };
    },
    arnOf(name) {
      return existing(name).arn;
    },
    currentValue(name) {
      const secret = state.find(name);
      return secret ? holderOf(secret, CURRENT)?.secretString : undefined;
    },
    labels(name) {
      const out: Record<string, string[]> = {};
      for (const version of existing(name).versions.values()) out[version.id] = [...version.stages];
      return out;
    },
    injectFault(fault) {
      emulator.faults.push({ ...fault });
    },
    clearFaults() {
      emulator.faults = [];
    },
    setLatency(ms) {
      emulator.latencyMs = ms;
    },
    reset() {
      state.secrets.clear();
      emulator.faults = [];
      emulator.latencyMs = 0;
      requests.length = 0;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
