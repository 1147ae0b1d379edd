// What every section of the bench works with: the deployment's build settings, the built functions, the server
// process and the environments for the handlers, prepared once by main.ts.
import { join } from 'node:path';
import {
  buildFunction,
  type DeploySettings,
  type FunctionBuild,
  type FunctionEntry,
  readDeploySettings,
} from './build.ts';
import { childEnv, handlerEnv } from './env.ts';
import { type Servers, startServers } from './server-control.ts';
import type { Endpoints, StoreKind } from './shared.ts';
import { progress } from './stats.ts';

export const KINDS: StoreKind[] = ['s3', 'secretsmanager'];
export const SCHEDULED_EVENT = { source: 'aws.events', 'detail-type': 'Scheduled Event' };

/** An event each function accepts: a schedule tick, an empty on-demand payload, a login redirect without a token. */
export function eventFor(entry: string): unknown {
  if (entry.includes('scheduled')) return SCHEDULED_EVENT;
  if (entry.includes('login')) {
    return { rawPath: '/', rawQueryString: '', requestContext: { http: { method: 'GET' } }, headers: {} };
  }
  return {};
}

export interface Bench {
  projectDir: string;
  /** Temporary folder for builds and the handlers' TMPDIR; removed at the end. */
  workDir: string;
  settings: DeploySettings;
  builds: Map<string, FunctionBuild>;
  /** The scheduled function, which most sections measure. */
  scheduled: FunctionBuild | undefined;
  servers: Servers;
  endpoints: Endpoints;
  /** A child's environment for the handlers with the document in `kind`, with the deployment's NODE_OPTIONS. */
  envFor(kind: StoreKind, nodeOptions?: string): NodeJS.ProcessEnv;
}

/** Builds every function as deployment does and starts the server process. */
export async function prepareBench(projectDir: string, workDir: string): Promise<Bench> {
  const settings = readDeploySettings(projectDir);
  for (const note of settings.notes) progress(note);
  progress(`building ${settings.functions.length} functions (${settings.source})`);
  const builds = new Map<string, FunctionBuild>();
  for (const fn of settings.functions) {
    builds.set(fn.name, await buildFunction(projectDir, settings, fn, join(workDir, 'build')));
  }
  const servers = await startServers(projectDir, childEnv({ TMPDIR: join(workDir, 'tmp') }));
  const endpoints = await servers.call<Endpoints>({ op: 'endpoints' });
  return {
    projectDir,
    workDir,
    settings,
    builds,
    scheduled: [...builds.values()].find((b) => b.fn.entry.includes('scheduled')),
    servers,
    endpoints,
    envFor: (kind, nodeOptions = settings.nodeOptions) =>
      childEnv(handlerEnv(workDir, endpoints, kind), nodeOptions),
  };
}

/** The build of a function (always present: every function is built before any section runs). */
export function buildOf(bench: Bench, fn: FunctionEntry): FunctionBuild {
  return bench.builds.get(fn.name) as FunctionBuild;
}
