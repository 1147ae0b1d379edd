// Packages the service with osls (offline, no AWS credentials) and checks the CloudFormation template it builds:
// schedule, runtimes, least-privilege roles, the config store's protection, alarms, and who may invoke what.
// Conditions are evaluated the way CloudFormation would for the parameters given, so each check sees the stack
// that would be created.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Dashboard,
  dashboardFromServerlessYml,
  substitute,
  type Widget,
} from '../../scripts/dashboard-picture.ts';
import { PROJECT_DIR, packageService, runOsls } from '../../scripts/package.ts';
import { cleanEnv } from '../../testing/clean-env.ts';
import { seedConfig, startSandbox } from '../support/fixtures.ts';
import { endpointEnv, locationOf, seedCloud, startCloud, storeOn } from '../support/stores.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };
interface Resource {
  Type: string;
  Condition?: string;
  Properties: JsonObject;
  DependsOn?: string | string[];
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}
interface Template {
  Resources: Record<string, Resource>;
  Outputs: JsonObject;
}

const FUNCTIONS = {
  scheduledRefresh: {
    logicalId: 'ScheduledRefreshLambdaFunction',
    handler: 'scheduled-refresh',
    timeout: 60,
  },
  onDemandRefresh: { logicalId: 'OnDemandRefreshLambdaFunction', handler: 'on-demand-refresh', timeout: 60 },
  loginCallback: { logicalId: 'LoginCallbackLambdaFunction', handler: 'login-callback', timeout: 45 },
} as const;
const GUARDED_SERVICES = ['s3', 'secretsmanager', 'lambda', 'sns', 'sqs', 'kms'];
const ALERT_EMAIL = 'ops@example.com';
const KMS_KEY = 'arn:aws:kms:ap-south-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b';
const TRADER_A = 'arn:aws:iam::123456789012:role/trader-a';
const TRADER_B = 'arn:aws:iam::123456789012:role/trader-b';
const TRADING_HOLIDAYS = '2026-01-26,2026-03-03';
const SPECIAL_SESSIONS = '2026-11-08';
const READY_CHECK_IST = '08:45';
const TELEGRAM_SECRET = 'kite-token-refresh/dev/telegram';
const WEBHOOK_SECRET = 'team-chat/webhook';
/** The ARN of a secret by name, as the channel policies write it: any of the six characters AWS appends. */
const secretArnText = (name: string) =>
  `arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${name}-??????`;

// ---- evaluating the template as CloudFormation would --------------------------------------------------------

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const NO_VALUE = Symbol('AWS::NoValue');

/** A value computable without deploying: literals, and Select/Split/Join over literals. */
function literal(v: Json): Json {
  if (!isObject(v)) return v;
  if ('Fn::Select' in v) {
    const [index, list] = v['Fn::Select'] as [Json, Json];
    const items = literal(list) as Json[];
    const i = Number(literal(index));
    if (i >= items.length) throw new Error(`Fn::Select index ${i} is out of range`);
    return items[i] as Json;
  }
  if ('Fn::Split' in v) {
    const [separator, text] = v['Fn::Split'] as [string, Json];
    return String(literal(text)).split(separator);
  }
  if ('Fn::Join' in v) {
    const [separator, parts] = v['Fn::Join'] as [string, Json[]];
    return parts.map((p) => String(literal(p))).join(separator);
  }
  throw new Error(`not computable before deployment: ${JSON.stringify(v)}`);
}

function condition(v: Json, conditions: JsonObject, seen: string[] = []): boolean {
  if (!isObject(v)) throw new Error(`not a condition: ${JSON.stringify(v)}`);
  if ('Condition' in v) {
    const name = v.Condition as string;
    if (seen.includes(name)) throw new Error(`condition ${name} refers to itself`);
    if (!(name in conditions)) throw new Error(`unknown condition ${name}`);
    return condition(conditions[name] as Json, conditions, [...seen, name]);
  }
  if ('Fn::Equals' in v) {
    const [a, b] = v['Fn::Equals'] as [Json, Json];
    return literal(a) === literal(b);
  }
  if ('Fn::Not' in v) return !condition((v['Fn::Not'] as Json[])[0] as Json, conditions, seen);
  if ('Fn::And' in v) return (v['Fn::And'] as Json[]).every((c) => condition(c, conditions, seen));
  if ('Fn::Or' in v) return (v['Fn::Or'] as Json[]).some((c) => condition(c, conditions, seen));
  throw new Error(`unsupported condition ${JSON.stringify(v)}`);
}

/** Resolves Fn::If and drops AWS::NoValue, given which conditions hold. */
function resolveIfs(v: Json, holds: Record<string, boolean>): Json | typeof NO_VALUE {
  if (Array.isArray(v)) {
    return v.map((x) => resolveIfs(x, holds)).filter((x): x is Json => x !== NO_VALUE);
  }
  if (!isObject(v)) return v;
  if (v.Ref === 'AWS::NoValue') return NO_VALUE;
  if ('Fn::If' in v) {
    const [name, yes, no] = v['Fn::If'] as [string, Json, Json];
    if (!(name in holds)) throw new Error(`Fn::If names unknown condition ${name}`);
    return resolveIfs(holds[name] ? yes : no, holds);
  }
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(v)) {
    const resolved = resolveIfs(value, holds);
    if (resolved !== NO_VALUE) out[key] = resolved;
  }
  return out;
}

/** The resources and outputs CloudFormation would create from this template. */
function effectiveTemplate(raw: JsonObject): Template {
  const conditions = (raw.Conditions ?? {}) as JsonObject;
  const holds: Record<string, boolean> = {};
  for (const name of Object.keys(conditions)) holds[name] = condition({ Condition: name }, conditions);
  const resources: Record<string, Resource> = {};
  for (const [id, resource] of Object.entries(raw.Resources as Record<string, JsonObject>)) {
    if (typeof resource.Condition === 'string' && !holds[resource.Condition]) continue;
    resources[id] = resolveIfs(resource, holds) as unknown as Resource;
  }
  const outputs: JsonObject = {};
  for (const [id, output] of Object.entries((raw.Outputs ?? {}) as Record<string, JsonObject>)) {
    if (typeof output.Condition === 'string' && !holds[output.Condition]) continue;
    outputs[id] = resolveIfs(output, holds) as Json;
  }
  return { Resources: resources, Outputs: outputs };
}

/** Every resource a Ref, GetAtt, Sub or DependsOn names, with where it was named. */
function references(v: Json, where: string, found: Array<{ name: string; where: string }> = []) {
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) references(x, `${where}[${i}]`, found);
  } else if (isObject(v)) {
    for (const [key, value] of Object.entries(v)) {
      if (key === 'Ref' && typeof value === 'string') found.push({ name: value, where });
      else if (key === 'Fn::GetAtt') found.push({ name: String((value as Json[])[0]), where });
      else if (key === 'Fn::Sub') {
        const text = typeof value === 'string' ? value : String((value as Json[])[0]);
        for (const m of text.matchAll(/\$\{([^}!]+)\}/g)) {
          found.push({ name: (m[1] as string).split('.')[0] as string, where });
        }
        if (Array.isArray(value)) references(value[1] as Json, where, found);
      } else if (key === 'DependsOn') {
        for (const name of ([] as Json[]).concat(value)) found.push({ name: String(name), where });
      } else references(value, `${where}.${key}`, found);
    }
  }
  return found;
}

// ---- reading IAM policies -------------------------------------------------------------------------------

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: Json;
  Resource?: Json;
  NotResource?: Json;
  Condition?: JsonObject;
}

/** Every identity-policy statement: inline role policies and standalone policies, by role. */
function identityStatements(t: Template): Array<{ role: string; statement: Statement }> {
  const out: Array<{ role: string; statement: Statement }> = [];
  for (const [id, r] of Object.entries(t.Resources)) {
    if (r.Type === 'AWS::IAM::Role') {
      for (const policy of (r.Properties.Policies ?? []) as JsonObject[]) {
        for (const s of (policy.PolicyDocument as JsonObject).Statement as unknown as Statement[]) {
          out.push({ role: id, statement: s });
        }
      }
    } else if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') {
      const roles = ((r.Properties.Roles ?? []) as JsonObject[]).map((ref) => String(ref.Ref));
      for (const s of (r.Properties.PolicyDocument as JsonObject).Statement as unknown as Statement[]) {
        for (const role of roles.length ? roles : [id]) out.push({ role, statement: s });
      }
    }
  }
  return out;
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * The text a value stands for, references written <Name> or <Name.Attribute>:
 * { "Fn::Sub": "arn:${AWS::Partition}:s3:::${ConfigBucket}/*" } reads arn:<AWS::Partition>:s3:::<ConfigBucket>/*.
 */
function resourceText(v: Json): string {
  if (typeof v === 'string') return v;
  if (isObject(v)) {
    if ('Ref' in v) return `<${String(v.Ref)}>`;
    if ('Fn::GetAtt' in v) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
    if ('Fn::Sub' in v) {
      const template = typeof v['Fn::Sub'] === 'string' ? v['Fn::Sub'] : String((v['Fn::Sub'] as Json[])[0]);
      return template.replace(/\$\{([^}]+)\}/g, '<$1>');
    }
    if ('Fn::Join' in v) {
      const [separator, parts] = v['Fn::Join'] as [string, Json[]];
      return parts.map(resourceText).join(separator);
    }
  }
  return JSON.stringify(v);
}

/** Actions by role: action -> resource texts, for the statements that allow something. */
function grants(t: Template, role: string): Map<string, string[]> {
  const byAction = new Map<string, string[]>();
  for (const { role: r, statement } of identityStatements(t)) {
    if (r !== role || statement.Effect !== 'Allow') continue;
    for (const action of list(statement.Action)) {
      byAction.set(action, [...(byAction.get(action) ?? []), ...list(statement.Resource).map(resourceText)]);
    }
  }
  return byAction;
}

function resource(t: Template, id: string): Resource {
  const found = t.Resources[id];
  if (!found) throw new Error(`the template has no resource ${id}`);
  return found;
}

const roleOf = (t: Template, functionId: string): string =>
  ((resource(t, functionId).Properties.Role as JsonObject)['Fn::GetAtt'] as string[])[0] as string;

const envOf = (t: Template, functionId: string): JsonObject =>
  (resource(t, functionId).Properties.Environment as JsonObject).Variables as JsonObject;

// ---- the dashboard ---------------------------------------------------------------------------------------

/** Per-account metrics, which the tick also emits with an Account dimension (the ones SEARCH may graph). */
const PER_ACCOUNT_METRICS = [
  'MinutesToExpiry',
  'ReadyForMarketOpen',
  'TokenAccepted',
  'VerificationInconclusive',
];
const LAMBDA_METRICS = ['Errors', 'Duration'];

async function sourceText(dir: string): Promise<string> {
  const files = (await readdir(join(PROJECT_DIR, dir), { recursive: true })).filter((f) => f.endsWith('.ts'));
  const texts = await Promise.all(files.map((f) => readFile(join(PROJECT_DIR, dir, f), 'utf8')));
  return texts.join('\n');
}

/** Whether the code emits a metric of this name: a string literal in lib/ or functions/. */
async function emitted(): Promise<(name: string) => boolean> {
  const code = (await sourceText('lib')) + (await sourceText('functions'));
  return (name) => code.includes(`'${name}'`);
}

/**
 * The packaged dashboard body with its Fn::Sub references filled in as CloudFormation would: the region, each
 * function's name and each alarm's ARN (an account id is made up).
 */
function deployedDashboard(t: Template): Dashboard {
  const sub = resource(t, 'KiteDashboard').Properties.DashboardBody as JsonObject;
  expect(typeof sub['Fn::Sub'], 'DashboardBody is one Fn::Sub string').toBe('string');
  const body = substitute(sub['Fn::Sub'] as string, (name) => {
    if (name === 'AWS::Region') return 'ap-south-1';
    const [id = '', attribute] = name.split('.');
    const r = resource(t, id);
    if (r.Type === 'AWS::Lambda::Function' && attribute === undefined)
      return String(r.Properties.FunctionName);
    if (r.Type === 'AWS::CloudWatch::Alarm' && attribute === 'Arn') {
      return `arn:aws:cloudwatch:ap-south-1:123456789012:alarm:${String(r.Properties.AlarmName)}`;
    }
    throw new Error(`the dashboard body names \${${name}}, a ${r.Type}`);
  });
  return JSON.parse(body) as Dashboard;
}

interface GraphedMetric {
  namespace: string;
  name: string;
  dimensions: string[];
}

/** What a metric widget graphs: plain metrics with their dimension names, and the metrics SEARCH asks for. */
function graphed(w: Widget): GraphedMetric[] {
  return (w.properties.metrics as Json[][]).map((entry) => {
    const options = entry.find(isObject);
    if (options && typeof options.expression === 'string') {
      const search =
        /^SEARCH\('\{([^}]+)\} service="kite-token-refresh-dev" MetricName="(\w+)"', '\w+', \d+\)$/.exec(
          options.expression,
        );
      expect(search, options.expression).not.toBeNull();
      const [namespace = '', ...dimensions] = (search?.[1] ?? '').split(',');
      return { namespace, name: search?.[2] ?? '', dimensions: dimensions.sort() };
    }
    const [namespace, name, ...rest] = entry.filter((v): v is string => typeof v === 'string');
    return {
      namespace: String(namespace),
      name: String(name),
      dimensions: rest.filter((_, i) => i % 2 === 0),
    };
  });
}

const overlap = (a: Widget, b: Widget) =>
  a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

// ---- packaging -------------------------------------------------------------------------------------------

const workDir = await mkdtemp(join(tmpdir(), 'ktr-package-'));
afterAll(() => rm(workDir, { recursive: true, force: true }));

interface Packaged {
  raw: JsonObject;
  t: Template;
  outDir: string;
}

async function packaged(name: string, params: Record<string, string>): Promise<Packaged> {
  const missing = Object.values(FUNCTIONS)
    .map(({ handler }) => `functions/${handler}.ts`)
    .filter((file) => !existsSync(join(PROJECT_DIR, file)));
  if (missing.length > 0) throw new Error(`cannot package: ${missing.join(', ')} missing`);
  const outDir = join(workDir, name);
  const { templatePath } = await packageService({ stage: 'dev', params, outDir });
  const raw = JSON.parse(await readFile(templatePath, 'utf8')) as JsonObject;
  return { raw, t: effectiveTemplate(raw), outDir };
}

/** Entry names, read from the zip's end-of-central-directory record and central directory. */
interface ZipEntry {
  name: string;
  read(): Buffer;
}

/** The entries of a zip file, from its central directory; read() inflates one. */
function zipEntries(zip: Buffer): ZipEntry[] {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error('not a zip file');
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry at ${at}`);
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localHeader = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    entries.push({
      name,
      read: () => {
        const start =
          localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
        const data = zip.subarray(start, start + compressedSize);
        return method === 0 ? data : inflateRawSync(data);
      },
    });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** Relative ESM imports (static and dynamic) of a bundled file. */
function relativeImports(code: string): string[] {
  return [...code.matchAll(/(?:from|import)\s*\(?\s*["'](\.\/[^"']+)["']/g)].map((m) => m[1] ?? '');
}

const execFileAsync = promisify(execFile);

const PACKAGE_TIMEOUT = 180_000;

// ---- checks that hold for every parameter set -----------------------------------------------------------

interface CommonCheckOptions {
  /** configPrefix: objects under it (`<prefix>*`, `<prefix>*.rescue.json`) are the one wildcard IAM may name. */
  objectPrefix?: string;
}

/** The object ARNs under configPrefix, the only IAM resources with a wildcard a prefix deployment may have. */
const prefixObjectArns = (prefix: string) => [
  `arn:<AWS::Partition>:s3:::<ConfigBucket>/${prefix}*`,
  `arn:<AWS::Partition>:s3:::<ConfigBucket>/${prefix}*.rescue.json`,
];

function commonChecks(get: () => Packaged, options: CommonCheckOptions = {}) {
  describe('in every configuration', () => {
    it('creates the bucket and the config secret only under the condition for their store kind', () => {
      const resources = get().raw.Resources as Record<string, JsonObject>;
      expect(resources.ConfigBucket?.Condition).toBe('UseS3Store');
      expect(resources.ConfigBucketPolicy?.Condition).toBe('UseS3Store');
      expect(resources.ConfigSecret?.Condition).toBe('UseSecretsManagerStore');
      for (const [id, r] of Object.entries(resources)) {
        if (r.Type === 'AWS::SecretsManager::Secret' && id !== 'KiteAppSecret')
          expect(r.Condition, id).toBe('UseSecretsManagerStore');
      }
    });

    it('refers only to resources the stack creates', () => {
      const { t } = get();
      const created = new Set(Object.keys(t.Resources));
      const dangling = references(t as unknown as Json, 'template').filter(
        ({ name }) => !name.startsWith('AWS::') && !created.has(name),
      );
      expect(dangling).toEqual([]);
    });

    it('runs the three functions on nodejs24.x, arm64, with their handlers and timeouts', () => {
      const { t } = get();
      for (const { logicalId, handler, timeout } of Object.values(FUNCTIONS)) {
        const fn = t.Resources[logicalId];
        expect(fn?.Type, logicalId).toBe('AWS::Lambda::Function');
        expect(fn?.Properties).toMatchObject({
          Runtime: 'nodejs24.x',
          Architectures: ['arm64'],
          Handler: `functions/${handler}.handler`,
          Timeout: timeout,
          MemorySize: 256,
        });
      }
      expect(Object.values(t.Resources).filter((r) => r.Type === 'AWS::Lambda::Function')).toHaveLength(3);
    });

    it('ships each function as ESM files with source maps, holding every chunk its entry can load and nothing else', async () => {
      const { outDir } = get();
      for (const [name, { handler }] of Object.entries(FUNCTIONS)) {
        const entries = zipEntries(await readFile(join(outDir, `${name}.zip`)));
        const byName = new Map(entries.map((e) => [e.name, e]));
        for (const entry of entries) expect(entry.name).toMatch(/^functions\/[\w.-]+\.mjs(\.map)?$/);
        for (const entry of entries.filter((e) => e.name.endsWith('.mjs')))
          expect(byName.has(`${entry.name}.map`)).toBe(true);
        // Walk the import graph from the handler: every chunk it can reach is in the zip.
        const seen = new Set<string>();
        const queue = [`functions/${handler}.mjs`];
        while (queue.length > 0) {
          const file = queue.pop() as string;
          if (seen.has(file)) continue;
          seen.add(file);
          const entry = byName.get(file);
          expect(entry, `${name}: ${file}`).toBeDefined();
          for (const spec of relativeImports(entry?.read().toString('utf8') ?? '')) {
            queue.push(join('functions', spec));
          }
        }
        expect(seen.size).toBeGreaterThan(1);
      }
    });

    it('ships no test server (the Kite sandbox or the S3, Secrets Manager, SNS and Lambda fakes) in any function', async () => {
      const { outDir } = get();
      for (const name of Object.keys(FUNCTIONS)) {
        const maps = zipEntries(await readFile(join(outDir, `${name}.zip`))).filter((e) =>
          e.name.endsWith('.map'),
        );
        // The source maps name every source file bundled into the function.
        const sources = maps.flatMap(
          (e) => (JSON.parse(e.read().toString('utf8')) as { sources: string[] }).sources,
        );
        expect(sources.filter((source) => /(^|\/)lib\//.test(source)).length, name).toBeGreaterThan(0);
        expect(
          sources.filter((source) => /(^|\/)(testing|test)\//.test(source)),
          name,
        ).toEqual([]);
      }
    });

    it('gives every function the store location, the app secret and the Powertools settings', () => {
      const { t } = get();
      for (const { logicalId } of Object.values(FUNCTIONS)) {
        const env = envOf(t, logicalId);
        expect(env).toMatchObject({
          POWERTOOLS_SERVICE_NAME: 'kite-token-refresh-dev',
          POWERTOOLS_METRICS_NAMESPACE: 'KiteTokenRefresh',
          KITE_API_SECRET_ID: { Ref: 'KiteAppSecret' },
          LOGIN_STATE_SCOPE: 'dev',
          REFRESH_WINDOW_MINUTES: '120',
          REMINDER_FIRST_IST: '08:00',
          REMINDER_FOLLOW_UP_IST: '09:00',
        });
        expect(env.BROKER_CONFIG_URI).toBeDefined();
        expect(
          'NODE_OPTIONS' in env,
          'source maps are not linked, so --enable-source-maps would only cost',
        ).toBe(false);
        expect(env.LOGIN_ALLOW_FIRST_PIN, logicalId).toBe(
          logicalId === FUNCTIONS.loginCallback.logicalId ? 'false' : undefined,
        );
        expect('ALERT_TOPIC_ARN' in env, logicalId).toBe(logicalId === FUNCTIONS.scheduledRefresh.logicalId);
        for (const name of ['READY_CHECK_IST', 'NOTIFY_READY']) {
          expect(name in env, `${logicalId} ${name}`).toBe(
            logicalId === FUNCTIONS.scheduledRefresh.logicalId,
          );
        }
      }
      expect(envOf(t, FUNCTIONS.scheduledRefresh.logicalId).ALERT_TOPIC_ARN).toEqual({ Ref: 'AlertTopic' });
    });

    it('runs the scheduled function at hh:31 UTC (hh:01 IST) every hour', () => {
      const { t } = get();
      const rules = Object.entries(t.Resources).filter(([, r]) => r.Type === 'AWS::Events::Rule');
      expect(rules).toHaveLength(1);
      const [ruleId, rule] = rules[0] as [string, Resource];
      expect(rule.Properties.ScheduleExpression).toBe('cron(31 * * * ? *)');
      expect(rule.Properties.State).toBe('ENABLED');
      expect(rule.Properties.Targets).toEqual([
        expect.objectContaining({ Arn: { 'Fn::GetAtt': ['ScheduledRefreshLambdaFunction', 'Arn'] } }),
      ]);
      const permission = Object.values(t.Resources).find(
        (r) => r.Type === 'AWS::Lambda::Permission' && r.Properties.Principal === 'events.amazonaws.com',
      );
      expect(permission?.Properties).toMatchObject({
        FunctionName: { 'Fn::GetAtt': ['ScheduledRefreshLambdaFunction', 'Arn'] },
        SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
      });
    });

    it('retries a failed scheduled run twice, then sends it to an encrypted dead-letter queue', () => {
      const { t } = get();
      const config = Object.values(t.Resources).find((r) => r.Type === 'AWS::Lambda::EventInvokeConfig');
      expect(config?.Properties).toMatchObject({
        FunctionName: { Ref: 'ScheduledRefreshLambdaFunction' },
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['ScheduledRefreshDlq', 'Arn'] } } },
      });
      expect(t.Resources.ScheduledRefreshDlq).toMatchObject({
        Type: 'AWS::SQS::Queue',
        Properties: { SqsManagedSseEnabled: true },
      });
    });

    it('gives each function its own role', () => {
      const { t } = get();
      const roles = Object.values(FUNCTIONS).map(({ logicalId }) => roleOf(t, logicalId));
      expect(new Set(roles).size).toBe(3);
      for (const role of roles) expect(t.Resources[role]?.Type).toBe('AWS::IAM::Role');
    });

    it('names exact resources, with no wildcard, in every IAM statement for S3, Secrets Manager, Lambda, SNS, SQS and KMS', () => {
      const { t } = get();
      const statements = identityStatements(t);
      expect(statements.length).toBeGreaterThan(0);
      for (const { role, statement } of statements) {
        const where = `${role} ${statement.Sid ?? JSON.stringify(statement.Action)}`;
        expect(statement.NotAction, where).toBeUndefined();
        expect(statement.NotResource, where).toBeUndefined();
        const actions = list(statement.Action);
        expect(actions.length, where).toBeGreaterThan(0);
        const guarded = actions.filter((a) => GUARDED_SERVICES.includes(a.split(':')[0] as string));
        if (guarded.length === 0) continue;
        for (const action of guarded) expect(action, where).not.toContain('*');
        const resources = list(statement.Resource);
        expect(resources.length, where).toBeGreaterThan(0);
        const allowed = options.objectPrefix === undefined ? [] : prefixObjectArns(options.objectPrefix);
        for (const resource of resources) {
          if (allowed.includes(resourceText(resource))) continue;
          expect(resourceText(resource), where).not.toContain('*');
        }
      }
    });

    it('lets only the scheduled function publish alerts and dead-letter its events', () => {
      const { t } = get();
      const scheduled = grants(t, roleOf(t, FUNCTIONS.scheduledRefresh.logicalId));
      expect(scheduled.get('sns:Publish')).toEqual(['<AlertTopic>']);
      expect(scheduled.get('sqs:SendMessage')).toEqual(['<ScheduledRefreshDlq.Arn>']);
      for (const { logicalId } of [FUNCTIONS.onDemandRefresh, FUNCTIONS.loginCallback]) {
        const actions = [...grants(t, roleOf(t, logicalId)).keys()];
        expect(
          actions.filter((a) => a.startsWith('sns:') || a.startsWith('sqs:')),
          logicalId,
        ).toEqual([]);
      }
    });

    it('lets every function read the Kite app secret and nothing else of it', () => {
      const { t } = get();
      for (const { logicalId } of Object.values(FUNCTIONS)) {
        const byAction = grants(t, roleOf(t, logicalId));
        expect(byAction.get('secretsmanager:GetSecretValue'), logicalId).toContain('<KiteAppSecret>');
        for (const [action, resources] of byAction) {
          if (action !== 'secretsmanager:GetSecretValue')
            expect(resources, action).not.toContain('<KiteAppSecret>');
        }
      }
    });

    it('creates the app secret empty, for the operator to fill', () => {
      const { t } = get();
      expect(t.Resources.KiteAppSecret).toMatchObject({
        Type: 'AWS::SecretsManager::Secret',
        Properties: { Name: 'kite-token-refresh/dev/kite-app' },
      });
      expect(t.Resources.KiteAppSecret?.Properties.SecretString).toBeUndefined();
      expect(t.Resources.KiteAppSecret?.Properties.GenerateSecretString).toBeUndefined();
    });

    it('mails alerts from a topic that every alarm notifies', () => {
      const { t } = get();
      expect(t.Resources.AlertTopic?.Type).toBe('AWS::SNS::Topic');
      expect(t.Resources.AlertEmailSubscription).toMatchObject({
        Type: 'AWS::SNS::Subscription',
        Properties: { TopicArn: { Ref: 'AlertTopic' }, Protocol: 'email', Endpoint: ALERT_EMAIL },
      });
      const alarms = Object.fromEntries(
        Object.entries(t.Resources)
          .filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm')
          .map(([id, r]) => [id, r.Properties]),
      );
      expect(Object.keys(alarms).sort()).toEqual([
        'LoginRequiredAlarm',
        'NoCompletedTickAlarm',
        'NotReadyForMarketOpenAlarm',
        'NotifyFailedAlarm',
        'RefreshFailedAlarm',
        'ScheduledRefreshDlqAlarm',
        'ScheduledRefreshErrorsAlarm',
      ]);
      for (const [id, alarm] of Object.entries(alarms)) {
        expect(alarm.AlarmActions, id).toEqual([{ Ref: 'AlertTopic' }]);
        expect(alarm.Threshold, id).toBe(1);
      }
      // Counts of things that went wrong: one in an hour is enough, and no data means nothing went wrong.
      for (const id of [
        'ScheduledRefreshErrorsAlarm',
        'LoginRequiredAlarm',
        'RefreshFailedAlarm',
        'ScheduledRefreshDlqAlarm',
        'NotifyFailedAlarm',
      ]) {
        expect(alarms[id], id).toMatchObject({
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          TreatMissingData: 'notBreaching',
        });
        expect(alarms[id]?.OKActions, id).toBeUndefined();
      }
      expect(alarms.ScheduledRefreshErrorsAlarm).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'ScheduledRefreshLambdaFunction' } }],
      });
      for (const id of ['LoginRequiredAlarm', 'RefreshFailedAlarm']) {
        expect(alarms[id], id).toMatchObject({
          Namespace: 'KiteTokenRefresh',
          MetricName: id.replace(/Alarm$/, ''),
          Dimensions: [{ Name: 'service', Value: 'kite-token-refresh-dev' }],
          Statistic: 'Sum',
        });
      }
      expect(alarms.ScheduledRefreshDlqAlarm).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['ScheduledRefreshDlq', 'QueueName'] } }],
      });
    });

    it('alarms when an account is not ready at the ready check, though not on a closed day with no check', () => {
      const alarm = resource(get().t, 'NotReadyForMarketOpenAlarm').Properties;
      expect(alarm).toMatchObject({
        Namespace: 'KiteTokenRefresh',
        MetricName: 'ReadyForMarketOpen',
        Dimensions: [{ Name: 'service', Value: 'kite-token-refresh-dev' }],
        Statistic: 'Minimum',
        Period: 3600,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'notBreaching',
      });
    });

    it('alarms when no scheduled tick completed for two hours, and says when ticks are back', () => {
      const alarm = resource(get().t, 'NoCompletedTickAlarm').Properties;
      expect(alarm).toMatchObject({
        Namespace: 'KiteTokenRefresh',
        MetricName: 'TickCompleted',
        Dimensions: [{ Name: 'service', Value: 'kite-token-refresh-dev' }],
        Statistic: 'Sum',
        Period: 3600,
        EvaluationPeriods: 2,
        DatapointsToAlarm: 2,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
        OKActions: [{ Ref: 'AlertTopic' }],
      });
    });

    it('alarms on a failed notice on any channel, summing the channels with their exact dimensions', () => {
      const alarm = resource(get().t, 'NotifyFailedAlarm').Properties;
      expect(alarm.MetricName).toBeUndefined();
      const queries = alarm.Metrics as JsonObject[];
      const returned = queries.filter((q) => q.ReturnData !== false);
      expect(returned).toHaveLength(1);
      const sum = /^SUM\(\[(.*)\]\)$/.exec(String(returned[0]?.Expression));
      const summed = (sum?.[1] ?? '').split(',').map((id) => id.trim());
      const channels = queries.filter((q) => q.MetricStat);
      expect(summed.sort()).toEqual(channels.map((q) => String(q.Id)).sort());
      expect(channels.map((q) => ((q.MetricStat as JsonObject).Metric as JsonObject).Dimensions)).toEqual(
        ['sns', 'telegram', 'webhook'].map((channel) => [
          { Name: 'service', Value: 'kite-token-refresh-dev' },
          { Name: 'Channel', Value: channel },
        ]),
      );
      for (const q of channels) {
        expect(q.ReturnData).toBe(false);
        expect(q.MetricStat).toMatchObject({
          Metric: { Namespace: 'KiteTokenRefresh', MetricName: 'NotifyFailed' },
          Period: 3600,
          Stat: 'Sum',
        });
      }
    });

    it('exposes the login callback, and only it, through a public Function URL', () => {
      const { t } = get();
      const urls = Object.values(t.Resources).filter((r) => r.Type === 'AWS::Lambda::Url');
      expect(urls).toHaveLength(1);
      expect(urls[0]?.Properties).toMatchObject({
        AuthType: 'NONE',
        TargetFunctionArn: { 'Fn::GetAtt': ['LoginCallbackLambdaFunction', 'Arn'] },
      });
      const publicPermissions = Object.values(t.Resources).filter(
        (r) => r.Type === 'AWS::Lambda::Permission' && r.Properties.Principal === '*',
      );
      expect(publicPermissions.length).toBeGreaterThan(0);
      for (const p of publicPermissions) {
        expect(p.Properties.FunctionName).toEqual({ 'Fn::GetAtt': ['LoginCallbackLambdaFunction', 'Arn'] });
        // Only through the URL: either the URL action, or InvokeFunction restricted to URL calls.
        expect(
          p.Properties.FunctionUrlAuthType === 'NONE' || p.Properties.InvokedViaFunctionUrl === true,
        ).toBe(true);
      }
    });
  });
}

/** The resource-policy statements of the on-demand function. */
const onDemandPermissions = (t: Template): Resource[] =>
  Object.values(t.Resources).filter(
    (r) =>
      r.Type === 'AWS::Lambda::Permission' &&
      JSON.stringify(r.Properties.FunctionName).includes('OnDemandRefreshLambdaFunction'),
  );

/** The principals allowed to invoke the on-demand function. */
const onDemandInvokers = (t: Template): Json[] =>
  onDemandPermissions(t).map((p) => literal(p.Properties.Principal as Json));

// ---- the default deployment: S3 store, SSE-S3, no on-demand invokers ------------------------------------

let s3Default: Packaged | undefined;
const s3DefaultTemplate = () => s3Default as Packaged;

describe('serverless template (storeKind=s3, defaults)', () => {
  beforeAll(async () => {
    s3Default = await packaged('s3-default', { alertEmail: ALERT_EMAIL });
  }, PACKAGE_TIMEOUT);

  it('keeps broker-config.json in a private, versioned, encrypted bucket of its own', () => {
    const { t } = s3DefaultTemplate();
    const bucket = t.Resources.ConfigBucket;
    expect(bucket?.Type).toBe('AWS::S3::Bucket');
    expect(bucket?.Properties).toMatchObject({
      VersioningConfiguration: { Status: 'Enabled' },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
    });
    expect(t.Resources.ConfigSecret).toBeUndefined();
  });

  it('refuses any access to the bucket that is not over TLS', () => {
    const { t } = s3DefaultTemplate();
    const policy = resource(t, 'ConfigBucketPolicy');
    expect(policy.Type).toBe('AWS::S3::BucketPolicy');
    expect(policy.Properties.Bucket).toEqual({ Ref: 'ConfigBucket' });
    const statements = (policy.Properties.PolicyDocument as JsonObject).Statement as unknown as Statement[];
    const denyInsecure = statements.find(
      (s) => s.Effect === 'Deny' && (s.Condition?.Bool as JsonObject)?.['aws:SecureTransport'] === 'false',
    );
    expect(denyInsecure).toBeDefined();
    expect(list(denyInsecure?.Action)).toContain('s3:*');
    expect((denyInsecure as unknown as JsonObject).Principal).toBe('*');
    expect(list(denyInsecure?.Resource).map(resourceText).sort()).toEqual([
      '<ConfigBucket.Arn>',
      'arn:<AWS::Partition>:s3:::<ConfigBucket>/*',
    ]);
  });

  it('points every function at the bucket object, with no KMS key', () => {
    const { t } = s3DefaultTemplate();
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      const env = envOf(t, logicalId);
      expect(resourceText(env.BROKER_CONFIG_URI as Json)).toBe('s3://<ConfigBucket>/broker-config.json');
      expect(env.BROKER_CONFIG_KMS_KEY_ID).toBeUndefined();
      expect(env.BROKER_CONFIG_BUCKET_OWNER, 'a re-claimed bucket name must not receive tokens').toEqual({
        Ref: 'AWS::AccountId',
      });
    }
    expect(t.Resources.ConfigKeyAccessPolicy).toBeUndefined();
  });

  it('lets each function read and write exactly the config object and its rescue object', () => {
    const { t } = s3DefaultTemplate();
    const object = 'arn:<AWS::Partition>:s3:::<ConfigBucket>/broker-config.json';
    const rescue = `${object}.rescue.json`;
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      const byAction = grants(t, roleOf(t, logicalId));
      expect(byAction.get('s3:GetObject')?.sort(), logicalId).toEqual([object, rescue]);
      expect(byAction.get('s3:PutObject')?.sort(), logicalId).toEqual([object, rescue]);
      expect(byAction.get('s3:DeleteObject'), logicalId).toEqual([rescue]);
      expect(byAction.get('s3:ListBucket'), logicalId).toEqual(['<ConfigBucket.Arn>']);
      const s3Actions = [...byAction.keys()].filter((a) => a.startsWith('s3:')).sort();
      expect(s3Actions, logicalId).toEqual([
        's3:DeleteObject',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
      ]);
      expect(
        [...byAction.keys()].filter((a) => a.startsWith('kms:')),
        logicalId,
      ).toEqual([]);
    }
  });

  it('lets no one invoke the on-demand function by default', () => {
    expect(onDemandInvokers(s3DefaultTemplate().t)).toEqual([]);
  });

  it('builds a dashboard whose body, its references filled in, is a CloudWatch dashboard body', () => {
    const { t } = s3DefaultTemplate();
    expect(resource(t, 'KiteDashboard')).toMatchObject({
      Type: 'AWS::CloudWatch::Dashboard',
      Properties: { DashboardName: 'kite-token-refresh-dev' },
    });
    const dashboard = deployedDashboard(t);
    expect(Object.keys(dashboard).sort()).toEqual(['periodOverride', 'start', 'widgets']);
    expect(dashboard.widgets.length).toBeGreaterThan(10);
    for (const w of dashboard.widgets) {
      const where = String(w.properties.title ?? w.type);
      expect(Object.keys(w).sort(), where).toEqual(['height', 'properties', 'type', 'width', 'x', 'y']);
      expect(['metric', 'text', 'alarm'], where).toContain(w.type);
      if (w.type === 'text') expect(typeof w.properties.markdown, where).toBe('string');
      if (w.type === 'alarm') expect(Array.isArray(w.properties.alarms), where).toBe(true);
      if (w.type !== 'metric') continue;
      expect(w.properties, where).toMatchObject({ region: 'ap-south-1', title: expect.any(String) });
      expect(['timeSeries', 'singleValue'], where).toContain(w.properties.view);
      const ids = (w.properties.metrics as Json[][]).flatMap((e) =>
        e.filter(isObject).flatMap((o) => (typeof o.id === 'string' ? [o.id] : [])),
      );
      expect(new Set(ids).size, `${where}: metric ids are unique`).toBe(ids.length);
      for (const id of ids) expect(id, where).toMatch(/^[a-z]\w*$/);
    }
  });

  it('places every widget on the 24-column grid, none overlapping another', () => {
    const { widgets } = deployedDashboard(s3DefaultTemplate().t);
    for (const w of widgets) {
      expect(Number.isInteger(w.x) && Number.isInteger(w.y), JSON.stringify(w.properties.title)).toBe(true);
      expect(w.x).toBeGreaterThanOrEqual(0);
      expect(w.y).toBeGreaterThanOrEqual(0);
      expect(w.width).toBeGreaterThanOrEqual(1);
      expect(w.height).toBeGreaterThanOrEqual(1);
      expect(w.x + w.width, String(w.properties.title)).toBeLessThanOrEqual(24);
    }
    const overlapping = widgets.flatMap((a, i) =>
      widgets.slice(i + 1).flatMap((b) => (overlap(a, b) ? [[a.properties.title, b.properties.title]] : [])),
    );
    expect(overlapping).toEqual([]);
  });

  it('graphs only metrics the functions emit, per-account ones through their Account dimension', async () => {
    const isEmitted = await emitted();
    const metrics = deployedDashboard(s3DefaultTemplate().t)
      .widgets.filter((w) => w.type === 'metric')
      .flatMap(graphed);
    expect(metrics.length).toBeGreaterThan(0);
    for (const m of metrics) {
      const where = `${m.namespace} ${m.name} by ${m.dimensions.join(',')}`;
      if (m.namespace === 'AWS/Lambda') {
        expect(LAMBDA_METRICS, where).toContain(m.name);
        expect(m.dimensions, where).toEqual(['FunctionName']);
        continue;
      }
      expect(m.namespace, where).toBe('KiteTokenRefresh');
      expect(isEmitted(m.name), `${where}: nothing in lib/ or functions/ emits it`).toBe(true);
      if (m.dimensions.includes('Account')) expect(PER_ACCOUNT_METRICS, where).toContain(m.name);
      if (m.name === 'NotifyFailed') expect(m.dimensions, where).toEqual(['Channel', 'service']);
      else if (!PER_ACCOUNT_METRICS.includes(m.name)) expect(m.dimensions, where).toEqual(['service']);
    }
    expect(
      PER_ACCOUNT_METRICS.filter(
        (name) => !metrics.some((m) => m.name === name && m.dimensions.includes('Account')),
      ),
      'every per-account metric has its per-account graph',
    ).toEqual([]);
  });

  it('alarms only on metrics the functions emit, and shows every alarm on the dashboard', async () => {
    const isEmitted = await emitted();
    const { t } = s3DefaultTemplate();
    const alarms = Object.entries(t.Resources).filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm');
    for (const [id, alarm] of alarms) {
      const stats = ((alarm.Properties.Metrics ?? []) as JsonObject[]).flatMap((q) =>
        q.MetricStat ? [(q.MetricStat as JsonObject).Metric as JsonObject] : [],
      );
      for (const metric of [alarm.Properties, ...stats]) {
        if (metric.Namespace === 'KiteTokenRefresh') {
          expect(isEmitted(String(metric.MetricName)), `${id}: ${String(metric.MetricName)}`).toBe(true);
        }
      }
    }
    const shown = deployedDashboard(t)
      .widgets.filter((w) => w.type === 'alarm')
      .flatMap((w) => w.properties.alarms as string[]);
    expect(shown.sort()).toEqual(
      alarms
        .map(([, a]) => `arn:aws:cloudwatch:ap-south-1:123456789012:alarm:${String(a.Properties.AlarmName)}`)
        .sort(),
    );
  });

  it('is the dashboard docs/dashboard.svg draws: the picture reads the same body from serverless.yml', async () => {
    const fromYaml = dashboardFromServerlessYml(await readFile(join(PROJECT_DIR, 'serverless.yml'), 'utf8'));
    expect(fromYaml).toEqual(deployedDashboard(s3DefaultTemplate().t));
  });

  it('links the dashboard in the DashboardUrl output', () => {
    const url = (s3DefaultTemplate().t.Outputs.DashboardUrl as JsonObject).Value as Json;
    expect(resourceText(url)).toBe(
      'https://<AWS::Region>.console.aws.amazon.com/cloudwatch/home?region=<AWS::Region>#dashboards:name=kite-token-refresh-dev',
    );
  });

  it('names no channel secret and grants no read of one when telegramSecretName and webhookSecretName are unset', () => {
    const { t } = s3DefaultTemplate();
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      const env = envOf(t, logicalId);
      expect('TELEGRAM_SECRET_ID' in env || 'WEBHOOK_SECRET_ID' in env, logicalId).toBe(false);
      expect(grants(t, roleOf(t, logicalId)).get('secretsmanager:GetSecretValue'), logicalId).toEqual([
        '<KiteAppSecret>',
      ]);
    }
    expect(t.Resources.TelegramSecretAccessPolicy).toBeUndefined();
    expect(t.Resources.WebhookSecretAccessPolicy).toBeUndefined();
  });

  commonChecks(s3DefaultTemplate);
});

// ---- S3 store with a customer-managed key and two invokers ----------------------------------------------

let s3Kms: Packaged | undefined;
const s3KmsTemplate = () => s3Kms as Packaged;

describe('the packaged functions (storeKind=s3)', () => {
  it(
    'run from their zips: a tick renews an expired token, an on-demand call gets it',
    async () => {
      s3Default ??= await packaged('s3-default', { alertEmail: ALERT_EMAIL });
      const { outDir } = s3Default;
      const fx = await startSandbox();
      const cloud = await startCloud();
      const work = await mkdtemp(join(tmpdir(), 'packaged-'));
      try {
        cloud.sm.reset();
        cloud.sm.createSecret('kite-app', JSON.stringify({ api_secret: fx.appSecret }));
        const seeded = seedConfig(fx.sandbox, 'expired');
        seedCloud(cloud, 's3', seeded);
        const invoke = async (fn: string, handler: string, event: unknown) => {
          const dir = join(work, fn);
          for (const entry of zipEntries(await readFile(join(outDir, `${fn}.zip`)))) {
            await mkdir(dirname(join(dir, entry.name)), { recursive: true });
            await writeFile(join(dir, entry.name), entry.read());
          }
          const runner = `
          const { handler } = await import(${JSON.stringify(pathToFileURL(join(dir, 'functions', `${handler}.mjs`)).href)});
          const context = { functionName: '${fn}', awsRequestId: 'r1', getRemainingTimeInMillis: () => 60000 };
          const out = await handler(${JSON.stringify(event)}, context);
          process.stdout.write(JSON.stringify({ status: out.status, hasToken: typeof out.accessToken === 'string' }));
        `;
          // Asynchronously: the servers it talks to run in this process.
          const child = await execFileAsync(process.execPath, ['--input-type=module', '-e', runner], {
            encoding: 'utf8',
            env: cleanEnv({
              ...endpointEnv(cloud),
              BROKER_CONFIG_URI: locationOf('s3'),
              KITE_API_SECRET_ID: 'kite-app',
              POWERTOOLS_LOG_LEVEL: 'SILENT',
              POWERTOOLS_METRICS_DISABLED: 'true',
            }),
          });
          return JSON.parse(child.stdout) as { status: string; hasToken: boolean };
        };

        expect(await invoke('scheduledRefresh', 'scheduled-refresh', { source: 'aws.events' })).toEqual({
          status: 'refreshed',
          hasToken: false,
        });
        const stored = (await storeOn(cloud, 's3').read()).config;
        expect(fx.sandbox.isAccessTokenValid(stored.api_secret)).toBe(true);
        expect(
          await invoke('onDemandRefresh', 'on-demand-refresh', { failedAccessToken: seeded.api_secret }),
        ).toEqual({
          status: 'already_fresh',
          hasToken: true,
        });
        expect(fx.sandbox.calls['POST /session/refresh_token']).toBe(1);
      } finally {
        await rm(work, { recursive: true, force: true });
        await cloud.close();
        await fx.sandbox.close();
      }
    },
    PACKAGE_TIMEOUT,
  );
});

describe('serverless template (storeKind=s3, kmsKeyArn, onDemandInvokers)', () => {
  beforeAll(async () => {
    s3Kms = await packaged('s3-kms', {
      alertEmail: ALERT_EMAIL,
      kmsKeyArn: KMS_KEY,
      onDemandInvokers: `${TRADER_A},${TRADER_B}`,
      loginCallbackConcurrency: '2',
      tradingHolidays: TRADING_HOLIDAYS,
      specialSessions: SPECIAL_SESSIONS,
      readyCheckIst: READY_CHECK_IST,
      notifyReady: 'true',
      telegramSecretName: TELEGRAM_SECRET,
      webhookSecretName: WEBHOOK_SECRET,
    });
  }, PACKAGE_TIMEOUT);

  it('passes readyCheckIst and notifyReady to the scheduled function, 09:01 and false by default', () => {
    const scheduled = FUNCTIONS.scheduledRefresh.logicalId;
    expect(envOf(s3KmsTemplate().t, scheduled)).toMatchObject({
      READY_CHECK_IST,
      NOTIFY_READY: 'true',
    });
    expect(envOf(s3DefaultTemplate().t, scheduled)).toMatchObject({
      READY_CHECK_IST: '09:01',
      NOTIFY_READY: 'false',
    });
  });

  it('names the channel secrets to the scheduled function only, and lets it read exactly those', () => {
    const { t } = s3KmsTemplate();
    const scheduled = FUNCTIONS.scheduledRefresh.logicalId;
    expect(envOf(t, scheduled)).toMatchObject({
      TELEGRAM_SECRET_ID: TELEGRAM_SECRET,
      WEBHOOK_SECRET_ID: WEBHOOK_SECRET,
    });
    const role = roleOf(t, scheduled);
    const channelStatements = identityStatements(t)
      .filter(
        ({ statement }) => statement.Sid === 'TelegramSecretRead' || statement.Sid === 'WebhookSecretRead',
      )
      .map(({ role: r, statement }) => ({ role: r, statement }));
    expect(channelStatements).toEqual([
      {
        role,
        statement: {
          Sid: 'TelegramSecretRead',
          Effect: 'Allow',
          Action: ['secretsmanager:GetSecretValue'],
          Resource: [
            {
              'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${TELEGRAM_SECRET}-??????`,
            },
          ],
        },
      },
      {
        role,
        statement: {
          Sid: 'WebhookSecretRead',
          Effect: 'Allow',
          Action: ['secretsmanager:GetSecretValue'],
          Resource: [
            {
              'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${WEBHOOK_SECRET}-??????`,
            },
          ],
        },
      },
    ]);
    expect(grants(t, role).get('secretsmanager:GetSecretValue')?.sort()).toEqual(
      ['<KiteAppSecret>', secretArnText(TELEGRAM_SECRET), secretArnText(WEBHOOK_SECRET)].sort(),
    );
    for (const { logicalId } of [FUNCTIONS.onDemandRefresh, FUNCTIONS.loginCallback]) {
      const env = envOf(t, logicalId);
      expect('TELEGRAM_SECRET_ID' in env || 'WEBHOOK_SECRET_ID' in env, logicalId).toBe(false);
      expect(grants(t, roleOf(t, logicalId)).get('secretsmanager:GetSecretValue'), logicalId).toEqual([
        '<KiteAppSecret>',
      ]);
    }
    // Whatever kmsKeyArn says, the channel secrets are read with the Secrets Manager service key.
    const keyStatements = identityStatements(t).filter(({ statement }) =>
      list(statement.Action).includes('kms:Decrypt'),
    );
    expect(JSON.stringify(keyStatements)).not.toContain('secretsmanager');
  });

  it('passes the tradingHolidays and specialSessions parameters to every function, empty by default', () => {
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      expect(envOf(s3KmsTemplate().t, logicalId), logicalId).toMatchObject({
        TRADING_HOLIDAYS,
        SPECIAL_SESSIONS,
      });
      expect(envOf(s3DefaultTemplate().t, logicalId), logicalId).toMatchObject({
        TRADING_HOLIDAYS: '',
        SPECIAL_SESSIONS: '',
      });
    }
  });

  it('reserves the given concurrency for the public login callback, and none by default', () => {
    const login = (t: Template) => t.Resources[FUNCTIONS.loginCallback.logicalId]?.Properties;
    expect(login(s3KmsTemplate().t)?.ReservedConcurrentExecutions).toBe('2');
    expect(login(s3DefaultTemplate().t)?.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('encrypts the bucket with the given key and tells the functions to write with it', () => {
    const { t } = s3KmsTemplate();
    expect(t.Resources.ConfigBucket?.Properties.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [
        {
          ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: KMS_KEY },
          BucketKeyEnabled: true,
        },
      ],
    });
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      const env = envOf(t, logicalId);
      expect(env.BROKER_CONFIG_KMS_KEY_ID, logicalId).toBe(KMS_KEY);
    }
  });

  it('lets each function use the key, and only that key, only through S3, Secrets Manager or (reminders) SNS', () => {
    const { t } = s3KmsTemplate();
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      const byAction = grants(t, roleOf(t, logicalId));
      expect([...new Set(byAction.get('kms:Decrypt'))], logicalId).toEqual([KMS_KEY]);
      expect([...new Set(byAction.get('kms:GenerateDataKey'))], logicalId).toEqual([KMS_KEY]);
    }
    const kms = identityStatements(t).filter(({ statement }) =>
      list(statement.Action).includes('kms:Decrypt'),
    );
    for (const { statement } of kms) {
      expect(Object.keys((statement.Condition?.StringEquals as JsonObject) ?? {})).toEqual([
        'kms:ViaService',
      ]);
      expect(
        JSON.stringify(statement.Condition),
        'an S3 stack uses the key through S3 (or SNS) only',
      ).not.toContain('secretsmanager.');
    }
  });

  it('encrypts the alert topic with the key, and lets only the scheduled function use it through SNS', () => {
    const { t } = s3KmsTemplate();
    expect(t.Resources.AlertTopic?.Properties?.KmsMasterKeyId).toBe(KMS_KEY);
    const viaSns = identityStatements(t).filter(({ statement }) =>
      JSON.stringify(statement.Condition ?? {}).includes('sns.'),
    );
    expect(viaSns.map(({ role }) => role)).toEqual([roleOf(t, FUNCTIONS.scheduledRefresh.logicalId)]);
  });

  it('lets exactly the listed principals invoke the on-demand function', () => {
    const { t } = s3KmsTemplate();
    expect(onDemandInvokers(t).sort()).toEqual([TRADER_A, TRADER_B]);
    for (const p of onDemandPermissions(t)) expect(p.Properties.Action).toBe('lambda:InvokeFunction');
  });

  commonChecks(s3KmsTemplate);
});

// ---- Secrets Manager store --------------------------------------------------------------------------------

let secrets: Packaged | undefined;
const secretsTemplate = () => secrets as Packaged;

describe('serverless template (storeKind=secretsmanager)', () => {
  beforeAll(async () => {
    secrets = await packaged('secretsmanager', {
      alertEmail: ALERT_EMAIL,
      storeKind: 'secretsmanager',
      kmsKeyArn: KMS_KEY,
      onDemandInvokers: TRADER_A,
    });
  }, PACKAGE_TIMEOUT);

  it('keeps broker-config.json in an empty secret of its own, encrypted with the given key, and no bucket', () => {
    const { t } = secretsTemplate();
    expect(t.Resources.ConfigBucket).toBeUndefined();
    expect(t.Resources.ConfigBucketPolicy).toBeUndefined();
    expect(t.Resources.ConfigSecret).toMatchObject({
      Type: 'AWS::SecretsManager::Secret',
      Properties: { Name: 'kite-token-refresh/dev/broker-config', KmsKeyId: KMS_KEY },
    });
    expect(t.Resources.ConfigSecret?.Properties.SecretString).toBeUndefined();
    expect(t.Resources.ConfigSecret, 'the secret holds live tokens').toMatchObject({
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    expect(t.Resources.ConfigSecret?.Properties.GenerateSecretString).toBeUndefined();
  });

  it('points every function at the secret', () => {
    const { t } = secretsTemplate();
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      const env = envOf(t, logicalId);
      expect(resourceText(env.BROKER_CONFIG_URI as Json)).toBe('secretsmanager://<ConfigSecret>');
      expect(env.BROKER_CONFIG_BUCKET_OWNER).toBeUndefined();
    }
  });

  it('lets each function use exactly the calls the Secrets Manager store makes, on the config secret only', () => {
    const { t } = secretsTemplate();
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      const byAction = grants(t, roleOf(t, logicalId));
      const onConfig = [...byAction].filter(([, resources]) => resources.includes('<ConfigSecret>'));
      expect(onConfig.map(([action]) => action).sort(), logicalId).toEqual([
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'secretsmanager:PutSecretValue',
        'secretsmanager:UpdateSecretVersionStage',
      ]);
      for (const [action, resources] of onConfig) {
        expect(
          resources.filter((r) => r !== '<ConfigSecret>' && r !== '<KiteAppSecret>'),
          action,
        ).toEqual([]);
      }
      expect(
        [...byAction.keys()].filter((a) => a.startsWith('s3:')),
        logicalId,
      ).toEqual([]);
    }
  });

  it('never makes the on-demand function public, even when `*` is listed', () => {
    expect(onDemandInvokers(secretsTemplate().t)).toEqual([TRADER_A]);
  });

  commonChecks(secretsTemplate);
});

// ---- several accounts ------------------------------------------------------------------------------------

const ALICE_KEY = 'family/alice.json';
const BOB_KEY = 'bob.json';
const PREFIX = 'accounts/';
const ALICE_SECRET = 'kite/alice';
const FIRST_SECRET = 'kite-token-refresh/dev/broker-config';

/** The ListBucket statements of a role. */
const listStatements = (t: Template, role: string): Statement[] =>
  identityStatements(t)
    .filter(({ role: r, statement }) => r === role && list(statement.Action).includes('s3:ListBucket'))
    .map(({ statement }) => statement);

let s3Keys: Packaged | undefined;
const s3KeysTemplate = () => s3Keys as Packaged;

describe('serverless template (storeKind=s3, configKeys)', () => {
  beforeAll(async () => {
    s3Keys = await packaged('s3-keys', { alertEmail: ALERT_EMAIL, configKeys: `${ALICE_KEY},${BOB_KEY}` });
  }, PACKAGE_TIMEOUT);

  it('points every function at the listed documents, in the order given', () => {
    const { t } = s3KeysTemplate();
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      const env = envOf(t, logicalId);
      expect(resourceText(env.BROKER_CONFIG_URI as Json), logicalId).toBe(
        `s3://<ConfigBucket>/${ALICE_KEY},s3://<ConfigBucket>/${BOB_KEY}`,
      );
      expect(env.BROKER_CONFIG_BUCKET_OWNER).toEqual({ Ref: 'AWS::AccountId' });
    }
    expect(resourceText((t.Outputs.BrokerConfigUri as JsonObject).Value as Json)).toBe(
      `s3://<ConfigBucket>/${ALICE_KEY},s3://<ConfigBucket>/${BOB_KEY}`,
    );
  });

  it('lets each function read and write exactly the listed documents and their rescue objects', () => {
    const { t } = s3KeysTemplate();
    const object = (key: string) => `arn:<AWS::Partition>:s3:::<ConfigBucket>/${key}`;
    const documents = [ALICE_KEY, BOB_KEY]
      .flatMap((key) => [object(key), object(`${key}.rescue.json`)])
      .sort();
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      const role = roleOf(t, logicalId);
      const byAction = grants(t, role);
      expect(byAction.get('s3:GetObject')?.sort(), logicalId).toEqual(documents);
      expect(byAction.get('s3:PutObject')?.sort(), logicalId).toEqual(documents);
      expect(byAction.get('s3:DeleteObject')?.sort(), logicalId).toEqual(
        [object(`${ALICE_KEY}.rescue.json`), object(`${BOB_KEY}.rescue.json`)].sort(),
      );
      expect(byAction.get('s3:ListBucket'), logicalId).toEqual(['<ConfigBucket.Arn>']);
      expect(listStatements(t, role).map((st) => st.Condition)).toEqual([undefined]);
      expect([...byAction.keys()].filter((a) => a.startsWith('s3:')).sort(), logicalId).toEqual([
        's3:DeleteObject',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
      ]);
    }
  });

  commonChecks(s3KeysTemplate);
});

let s3Prefix: Packaged | undefined;
const s3PrefixTemplate = () => s3Prefix as Packaged;

describe('serverless template (storeKind=s3, configPrefix)', () => {
  beforeAll(async () => {
    s3Prefix = await packaged('s3-prefix', { alertEmail: ALERT_EMAIL, configPrefix: PREFIX });
  }, PACKAGE_TIMEOUT);

  it('points every function at the prefix', () => {
    const { t } = s3PrefixTemplate();
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      expect(resourceText(envOf(t, logicalId).BROKER_CONFIG_URI as Json), logicalId).toBe(
        `s3://<ConfigBucket>/${PREFIX}`,
      );
    }
  });

  it('lets each function read and write objects under the prefix, delete only rescue objects there, and list only that prefix', () => {
    const { t } = s3PrefixTemplate();
    const [everything, rescue] = prefixObjectArns(PREFIX);
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      const role = roleOf(t, logicalId);
      const byAction = grants(t, role);
      expect(byAction.get('s3:GetObject'), logicalId).toEqual([everything]);
      expect(byAction.get('s3:PutObject'), logicalId).toEqual([everything]);
      expect(byAction.get('s3:DeleteObject'), logicalId).toEqual([rescue]);
      expect(byAction.get('s3:ListBucket'), logicalId).toEqual(['<ConfigBucket.Arn>']);
      expect(listStatements(t, role).map((st) => st.Condition)).toEqual([
        { StringLikeIfExists: { 's3:prefix': [`${PREFIX}*`] } },
      ]);
      expect([...byAction.keys()].filter((a) => a.startsWith('s3:')).sort(), logicalId).toEqual([
        's3:DeleteObject',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
      ]);
    }
  });

  commonChecks(s3PrefixTemplate, { objectPrefix: PREFIX });
});

let secretsList: Packaged | undefined;
const secretsListTemplate = () => secretsList as Packaged;

describe('serverless template (storeKind=secretsmanager, configSecretNames)', () => {
  beforeAll(async () => {
    secretsList = await packaged('secretsmanager-list', {
      alertEmail: ALERT_EMAIL,
      storeKind: 'secretsmanager',
      configSecretNames: `${FIRST_SECRET},${ALICE_SECRET}`,
    });
  }, PACKAGE_TIMEOUT);

  /** The config secrets' logical ids, by name. */
  const configSecrets = (t: Template) =>
    Object.fromEntries(
      Object.entries(t.Resources)
        .filter(([id, r]) => r.Type === 'AWS::SecretsManager::Secret' && id !== 'KiteAppSecret')
        .map(([id, r]) => [r.Properties.Name as string, id]),
    );

  it('creates one empty secret per listed name, keeping ConfigSecret for configSecretName', () => {
    const { t } = secretsListTemplate();
    const secrets = configSecrets(t);
    expect(Object.keys(secrets).sort()).toEqual([ALICE_SECRET, FIRST_SECRET].sort());
    expect(secrets[FIRST_SECRET]).toBe('ConfigSecret');
    for (const id of Object.values(secrets)) {
      expect(t.Resources[id]?.Properties.SecretString, id).toBeUndefined();
      expect(t.Resources[id]?.Properties.GenerateSecretString, id).toBeUndefined();
      expect(t.Resources[id]?.DeletionPolicy, `${id} holds live tokens`).toBe('Retain');
    }
    expect(t.Resources.ConfigBucket).toBeUndefined();
  });

  it('points every function at the listed secrets, by name', () => {
    const { t } = secretsListTemplate();
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      expect(resourceText(envOf(t, logicalId).BROKER_CONFIG_URI as Json), logicalId).toBe(
        `secretsmanager://${FIRST_SECRET},secretsmanager://${ALICE_SECRET}`,
      );
    }
  });

  it("lets each function use the store's calls on exactly the listed secrets", () => {
    const { t } = secretsListTemplate();
    const listed = Object.values(configSecrets(t))
      .map((id) => `<${id}>`)
      .sort();
    for (const { logicalId } of Object.values(FUNCTIONS)) {
      const byAction = grants(t, roleOf(t, logicalId));
      for (const action of [
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'secretsmanager:PutSecretValue',
        'secretsmanager:UpdateSecretVersionStage',
      ]) {
        const onConfig = (byAction.get(action) ?? []).filter((r) => r !== '<KiteAppSecret>').sort();
        expect(onConfig, `${logicalId} ${action}`).toEqual(listed);
      }
      expect([...byAction.keys()].filter((a) => a.startsWith('s3:'))).toEqual([]);
    }
  });

  commonChecks(secretsListTemplate);
});

// ---- parameters that must be right before anything is built -------------------------------------------------

describe('serverless.yml parameters', () => {
  it(
    'refuses to resolve a stage that has no alert address',
    async () => {
      await expect(runOsls(['print', '--stage', 'prod'], { requireAlertEmail: true })).rejects.toThrow(
        /AlertEmailSubscription\.Properties\.Endpoint/,
      );
    },
    PACKAGE_TIMEOUT,
  );

  it(
    'accepts an alert address given as a parameter',
    async () => {
      await expect(
        runOsls(['print', '--stage', 'prod', `--param=alertEmail=${ALERT_EMAIL}`], {
          requireAlertEmail: true,
        }),
      ).resolves.toBeGreaterThan(0);
    },
    PACKAGE_TIMEOUT,
  );

  it(
    'refuses on-demand invokers that are not account ids or IAM principal ARNs before building anything',
    async () => {
      const outDir = join(workDir, 'refused-invokers');
      await expect(
        runOsls([
          'package',
          '--stage',
          'dev',
          '--package',
          outDir,
          `--param=onDemandInvokers=${TRADER_A},s3.amazonaws.com`,
        ]),
      ).rejects.toThrow(/onDemandInvokers accepts only .*refused: "s3\.amazonaws\.com"/s);
      expect(existsSync(join(outDir, 'cloudformation-template-update-stack.json'))).toBe(false);
    },
    PACKAGE_TIMEOUT,
  );

  it(
    'refuses account parameters that do not fit the store, naming the parameter, before building anything',
    async () => {
      await expect(runOsls(['print', '--stage', 'dev', '--param=configPrefix=accounts'])).rejects.toThrow(
        /Parameter configPrefix must be a key prefix ending in "\/"/,
      );
      await expect(
        runOsls(['print', '--stage', 'dev', '--param=configKeys=a.json', '--param=configPrefix=accounts/']),
      ).rejects.toThrow(/Parameter configPrefix and configKeys name the accounts two ways/);
      await expect(
        runOsls(['print', '--stage', 'dev', '--param=storeKind=secretsmanager', '--param=configKeys=a.json']),
      ).rejects.toThrow(/Parameter configKeys applies to storeKind=s3/);
    },
    PACKAGE_TIMEOUT,
  );

  it(
    'refuses a notifyReady other than true or false before building anything',
    async () => {
      const outDir = join(workDir, 'refused-notify-ready');
      await expect(
        runOsls(['package', '--stage', 'dev', '--package', outDir, '--param=notifyReady=yes']),
      ).rejects.toThrow(/custom\.notifyReady/);
      expect(existsSync(join(outDir, 'cloudformation-template-update-stack.json'))).toBe(false);
    },
    PACKAGE_TIMEOUT,
  );

  it(
    'refuses a store kind other than s3 or secretsmanager',
    async () => {
      await expect(runOsls(['print', '--stage', 'dev', '--param=storeKind=dynamodb'])).rejects.toThrow(
        /custom\.storeKind/,
      );
    },
    PACKAGE_TIMEOUT,
  );
});
