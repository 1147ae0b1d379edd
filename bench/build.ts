// Builds the functions the way deployment does, and the "floor" bundles they are compared with.
//
// Deployment builds with serverless-esbuild, configured under custom.esbuild in serverless.yml. This file reads that
// block (a small reader for the flat YAML it uses: scalars, quoted strings, [flow] and block lists, one nested map
// level), applies the plugin's defaults and its option handling (plugin-only keys dropped, `exclude` added to
// `external`, outputFileExtension → outExtension, one build per function into <build>/<dirname of the handler>),
// and hands the rest to esbuild unchanged. Without serverless.yml it falls back to bundle + minify, platform
// node, target node24, ESM, .mjs, external source map, nothing external.
//
// The floor of a function is a bundle of only the AWS SDK clients its code path uses, each imported with the
// commands the product sends, so tree shaking keeps what the product needs and nothing else. Floors are built
// with the same options as the functions.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BuildOptions, build, type Metafile, type Plugin } from 'esbuild';
import type { StoreKind } from './shared.ts';

// Options serverless-esbuild consumes itself instead of passing to esbuild (node_modules/serverless-esbuild/dist/bundle.js).
const PLUGIN_ONLY = new Set([
  'concurrency',
  'zipConcurrency',
  'exclude',
  'nativeZip',
  'packager',
  'packagePath',
  'watch',
  'keepOutputDirectory',
  'packagerOptions',
  'installExtraArgs',
  'outputFileExtension',
  'outputBuildFolder',
  'outputWorkFolder',
  'nodeExternals',
  'skipBuild',
  'skipRebuild',
  'skipBuildExcludeFns',
  'stripEntryResolveExtensions',
  'disposeContext',
  'config',
]);

export interface FunctionEntry {
  /** The serverless.yml function name, e.g. scheduledRefresh. */
  name: string;
  /** Source file relative to the project, e.g. functions/scheduled-refresh.ts. */
  entry: string;
}

export interface DeploySettings {
  /** Where the settings came from. */
  source: string;
  /** esbuild options without entry points and output locations. */
  options: BuildOptions;
  outputExtension: string;
  /** NODE_OPTIONS the functions run with (provider.environment), e.g. --enable-source-maps. */
  nodeOptions: string | undefined;
  /** Lambda memory size in MB (provider.memorySize). */
  memorySizeMb: number | undefined;
  functions: FunctionEntry[];
  notes: string[];
}

type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

function stripComment(text: string): string {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(text[i - 1] ?? ''))) return text.slice(0, i).trimEnd();
  }
  return text.trimEnd();
}

function scalar(raw: string): Yaml {
  const text = raw.trim();
  if (text.startsWith('"')) return JSON.parse(text) as string;
  if (text.startsWith("'")) return text.slice(1, -1).replaceAll("''", "'");
  if (text.startsWith('[')) {
    const inner = text.slice(1, -1).trim();
    return inner ? inner.split(',').map((part) => scalar(part)) : [];
  }
  if (text === 'true' || text === 'false') return text === 'true';
  if (text === 'null' || text === '~' || text === '') return null;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}

interface Line {
  indent: number;
  text: string;
}

function meaningfulLines(source: string): Line[] {
  const lines: Line[] = [];
  for (const raw of source.split('\n')) {
    const text = stripComment(raw);
    if (!text.trim()) continue;
    lines.push({ indent: text.length - text.trimStart().length, text: text.trim() });
  }
  return lines;
}

/** A block list starting at `from` (lines "- item" at one indent); nested lines under an item are skipped. */
function parseList(lines: Line[], from: number, indent: number): { value: Yaml[]; next: number } {
  const items: Yaml[] = [];
  let i = from;
  while (i < lines.length && (lines[i] as Line).indent === indent) {
    const item = lines[i] as Line;
    if (!item.text.startsWith('- ')) break;
    items.push(scalar(item.text.slice(2)));
    i++;
    while (i < lines.length && (lines[i] as Line).indent > indent) i++;
  }
  return { value: items, next: i };
}

/** The value of a key whose line has nothing after the colon: what the lines under it hold, or null. */
function parseBlock(lines: Line[], from: number, indent: number): { value: Yaml; next: number } {
  const child = lines[from];
  if (!child || child.indent <= indent) return { value: null, next: from };
  if (child.text.startsWith('- ')) return parseList(lines, from, child.indent);
  return parseMap(lines, from, child.indent);
}

/** Parses a block of `key: value` lines (all at the same indent) and their children. */
function parseMap(
  lines: Line[],
  from: number,
  indent: number,
): { value: Record<string, Yaml>; next: number } {
  const value: Record<string, Yaml> = {};
  let i = from;
  while (i < lines.length) {
    const line = lines[i] as Line;
    if (line.indent < indent) break;
    i++;
    const match = /^([^:\s][^:]*?):(?:\s+(.*))?$/.exec(line.text);
    if (line.indent > indent || !match) continue;
    const key = (match[1] as string).replace(/^['"]|['"]$/g, '');
    const rest = match[2];
    if (rest !== undefined && rest !== '') {
      value[key] = scalar(rest);
      continue;
    }
    const block = parseBlock(lines, i, indent);
    value[key] = block.value;
    i = block.next;
  }
  return { value, next: i };
}

function asRecord(value: Yaml | undefined): Record<string, Yaml> | undefined {
  return value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
}

function asStrings(value: Yaml | undefined): string[] {
  if (Array.isArray(value)) return value.map(String);
  return typeof value === 'string' ? [value] : [];
}

const FALLBACK: Record<string, Yaml> = {
  bundle: true,
  minify: true,
  sourcemap: true,
  target: 'node24',
  platform: 'node',
  format: 'esm',
  outputFileExtension: '.mjs',
  external: [],
  exclude: [],
};

/** serverless-esbuild's defaults, then the target it derives from the runtime, then custom.esbuild. */
function esbuildOptions(
  custom: Record<string, Yaml> | undefined,
  runtime: string,
): { options: BuildOptions; outputExtension: string } {
  const runtimeTarget = /^nodejs(\d+)\.x$/.exec(runtime)?.[1];
  const merged: Record<string, Yaml> = {
    bundle: true,
    platform: 'node',
    external: [],
    exclude: ['aws-sdk'],
    outputFileExtension: '.js',
    ...(runtimeTarget ? { target: `node${runtimeTarget}` } : {}),
    ...(custom ?? FALLBACK),
  };
  const exclude = asStrings(merged.exclude);
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(merged)) if (!PLUGIN_ONLY.has(key)) options[key] = value;
  options.external = [...asStrings(merged.external), ...(exclude.includes('*') ? [] : exclude)];
  const outputExtension = typeof merged.outputFileExtension === 'string' ? merged.outputFileExtension : '.js';
  if (outputExtension !== '.js') options.outExtension = { '.js': outputExtension };
  return { options: options as BuildOptions, outputExtension };
}

/** The functions serverless.yml declares, by the source file of each handler; functions/*.ts without any. */
function functionsOf(projectDir: string, declared: Record<string, Yaml>, notes: string[]): FunctionEntry[] {
  const functions: FunctionEntry[] = [];
  for (const [name, fn] of Object.entries(declared)) {
    const handler = asRecord(fn)?.handler;
    if (typeof handler !== 'string') continue;
    const base = handler.slice(0, handler.lastIndexOf('.'));
    const entry = ['.ts', '.mts', '.js', '.mjs']
      .map((ext) => `${base}${ext}`)
      .find((file) => existsSync(join(projectDir, file)));
    if (entry) functions.push({ name, entry });
    else notes.push(`function ${name}: no source file for handler ${handler}`);
  }
  if (functions.length > 0) return functions;
  for (const entry of [
    'functions/scheduled-refresh.ts',
    'functions/on-demand-refresh.ts',
    'functions/login-callback.ts',
  ]) {
    if (existsSync(join(projectDir, entry))) functions.push({ name: entry.slice(10, -3), entry });
  }
  notes.push('no functions found in serverless.yml: building functions/*.ts');
  return functions;
}

/** The deployment's esbuild settings, functions and runtime environment, from serverless.yml. */
export function readDeploySettings(projectDir: string): DeploySettings {
  const notes: string[] = [];
  const path = join(projectDir, 'serverless.yml');
  let root: Record<string, Yaml> = {};
  if (existsSync(path)) root = parseMap(meaningfulLines(readFileSync(path, 'utf8')), 0, 0).value;
  const custom = asRecord(asRecord(root.custom)?.esbuild);
  const provider = asRecord(root.provider);
  const runtime = typeof provider?.runtime === 'string' ? provider.runtime : 'nodejs24.x';
  if (!custom) notes.push('no custom.esbuild in serverless.yml: using the fallback build settings');
  const environment = asRecord(provider?.environment);
  return {
    source: custom ? 'serverless.yml custom.esbuild (+ serverless-esbuild defaults)' : 'fallback',
    ...esbuildOptions(custom, runtime),
    nodeOptions: typeof environment?.NODE_OPTIONS === 'string' ? environment.NODE_OPTIONS : undefined,
    memorySizeMb: typeof provider?.memorySize === 'number' ? provider.memorySize : undefined,
    functions: functionsOf(projectDir, asRecord(root.functions) ?? {}, notes),
    notes,
  };
}

export interface FunctionBuild {
  fn: FunctionEntry;
  /** Absolute path of the handler file. */
  entryFile: string;
  outdir: string;
  metafile: Metafile;
}

/** Builds one function as serverless-esbuild would, into <root>/<function>/<dirname of the entry>/. */
export async function buildFunction(
  projectDir: string,
  settings: DeploySettings,
  fn: FunctionEntry,
  root: string,
  plugins: Plugin[] = [],
): Promise<FunctionBuild> {
  const slash = fn.entry.lastIndexOf('/');
  const outdir = join(root, fn.name, slash > 0 ? fn.entry.slice(0, slash) : '.');
  const result = await build({
    ...settings.options,
    absWorkingDir: projectDir,
    entryPoints: [fn.entry],
    outdir,
    metafile: true,
    write: true,
    logLevel: 'error',
    plugins,
  });
  const stem = fn.entry.slice(slash + 1).replace(/\.[^.]+$/, '');
  return {
    fn,
    entryFile: join(outdir, `${stem}${settings.outputExtension}`),
    outdir,
    metafile: result.metafile,
  };
}

/**
 * Marks the evaluation of AWS SDK client classes and the store modules: each such module gets one statement
 * appended that records its name in globalThis.__ktrEvaluated, so a run can tell what was evaluated, not only
 * parsed. Used for a separate, instrumented build; sizes always come from the plain one.
 */
export const evaluationMarker: Plugin = {
  name: 'evaluation-marker',
  setup(b) {
    const mark = (name: string) => `\n;(globalThis.__ktrEvaluated ??= []).push(${JSON.stringify(name)});\n`;
    b.onLoad(
      { filter: /[\\/]@aws-sdk[\\/]client-[^\\/]+[\\/]dist-(es|cjs)[\\/][A-Za-z0-9]+Client\.js$/ },
      (args) => {
        const client = /@aws-sdk[\\/](client-[^\\/]+)/.exec(args.path)?.[1] ?? args.path;
        return { contents: readFileSync(args.path, 'utf8') + mark(`@aws-sdk/${client}`), loader: 'js' };
      },
    );
    b.onLoad({ filter: /[\\/]lib[\\/]store[\\/][a-z0-9-]+-store\.ts$/ }, (args) => {
      const file = /(lib[\\/]store[\\/][a-z0-9-]+-store\.ts)$/.exec(args.path)?.[1] ?? args.path;
      return { contents: readFileSync(args.path, 'utf8') + mark(file.replaceAll('\\', '/')), loader: 'ts' };
    });
  },
};

/** What a floor bundle holds: for each client package, the names imported from it. */
export type FloorSpec = Record<string, string[]>;

// The commands each part of the product sends (lib/store/*-store.ts, lib/lambda/app-secret.ts, lib/notify/sns.ts, lib/client/kite-auth.ts).
const S3_STORE = ['S3Client', 'GetObjectCommand', 'PutObjectCommand', 'DeleteObjectCommand'];
const SM_STORE = [
  'SecretsManagerClient',
  'GetSecretValueCommand',
  'PutSecretValueCommand',
  'UpdateSecretVersionStageCommand',
  'DescribeSecretCommand',
  'CreateSecretCommand',
];
const APP_SECRET = ['SecretsManagerClient', 'GetSecretValueCommand'];
const OTHER_CLIENTS: Record<string, string[]> = {
  '@aws-sdk/client-sns': ['SNSClient', 'PublishCommand'],
  '@aws-sdk/client-lambda': ['LambdaClient', 'InvokeCommand'],
};

/**
 * The clients a function's code path uses with the document in `kind`: the store's client, Secrets Manager for
 * the Kite app secret (KITE_API_SECRET_ID), and any other client the function's bundle contains (SNS for alerts).
 */
export function floorSpec(kind: StoreKind, bundleClients: string[]): FloorSpec {
  const spec: FloorSpec =
    kind === 's3'
      ? { '@aws-sdk/client-s3': S3_STORE, '@aws-sdk/client-secrets-manager': APP_SECRET }
      : { '@aws-sdk/client-secrets-manager': SM_STORE };
  for (const [client, names] of Object.entries(OTHER_CLIENTS))
    if (bundleClients.includes(client)) spec[client] = names;
  return spec;
}

export function floorKey(spec: FloorSpec): string {
  return Object.entries(spec)
    .map(([client, names]) => `${client.replace('@aws-sdk/client-', '')}(${names.length})`)
    .join('+');
}

export function floorSource(spec: FloorSpec): string {
  const lines: string[] = [];
  const all: string[] = [];
  for (const [client, names] of Object.entries(spec)) {
    lines.push(`import { ${names.join(', ')} } from '${client}';`);
    all.push(...names);
  }
  lines.push(`export const c = [${all.join(', ')}];`);
  return `${lines.join('\n')}\n`;
}

/**
 * Small bundles of the functions' other dependencies alone (what lib/lambda/context.ts and the handlers build at import
 * time), to tell what each adds to a cold import next to the floors.
 */
export const PROBES: Record<string, string> = {
  powertools: [
    "import { Logger } from '@aws-lambda-powertools/logger';",
    "import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';",
    "import { Metrics } from '@aws-lambda-powertools/metrics';",
    "import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';",
    "export const logger = new Logger({ serviceName: 'probe' });",
    "export const metrics = new Metrics({ namespace: 'probe', serviceName: 'probe' });",
    'export const middleware = [injectLambdaContext, logMetrics];',
  ].join('\n'),
  zod: "import * as z from 'zod/mini';\nexport const schema = z.object({ a: z.string(), b: z.optional(z.number()) });",
  middy: "import middy from '@middy/core';\nexport const handler = middy(async () => 1);",
};

export interface SourceBuild {
  file: string;
  metafile: Metafile;
}

/** Builds one module's source with the functions' options (one file: floors and probes have nothing to split). */
export async function buildSource(
  projectDir: string,
  settings: DeploySettings,
  source: string,
  file: string,
): Promise<SourceBuild> {
  const { outExtension: _ext, splitting: _split, ...options } = settings.options;
  const result = await build({
    ...options,
    absWorkingDir: projectDir,
    stdin: { contents: source, resolveDir: projectDir, sourcefile: 'entry.ts', loader: 'ts' },
    outfile: file,
    metafile: true,
    write: true,
    logLevel: 'error',
  });
  return { file, metafile: result.metafile };
}

/** Groups an output's inputs by package (node_modules) or project file, in bytes of output. */
export function bytesByOrigin(metafile: Metafile, outputs: string[]): Record<string, number> {
  const groups: Record<string, number> = {};
  for (const output of outputs) {
    const meta = metafile.outputs[output];
    if (!meta) continue;
    for (const [input, { bytesInOutput }] of Object.entries(meta.inputs)) {
      const pkg = /node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(input)?.[1];
      const key = pkg ? pkg.replaceAll('\\', '/') : input.replace(/^<stdin>$/, '(entry)');
      groups[key] = (groups[key] ?? 0) + bytesInOutput;
    }
  }
  return groups;
}

/** The @aws-sdk/client-* packages with code in the given outputs. */
export function clientsIn(metafile: Metafile, outputs: string[]): string[] {
  return Object.keys(bytesByOrigin(metafile, outputs))
    .filter((key) => key.startsWith('@aws-sdk/client-'))
    .sort();
}

/** The inputs that import `path`, with how (import-statement, dynamic-import, …). */
export function importersOf(metafile: Metafile, path: string): string[] {
  const found: string[] = [];
  for (const [input, meta] of Object.entries(metafile.inputs)) {
    for (const imported of meta.imports)
      if (imported.path === path) found.push(`${input} (${imported.kind})`);
  }
  return found.sort();
}
