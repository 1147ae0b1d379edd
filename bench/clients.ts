// Section 3, store clients: which SDK clients and store modules the scheduled function parses (the files a cold and
// a warm tick load, mapped through the esbuild metafile) and evaluates (an instrumented build marks each client
// class and store module). An S3-configured function must never parse the Secrets Manager store, and the reverse.
import { join } from 'node:path';
import {
  buildFunction,
  bytesByOrigin,
  clientsIn,
  evaluationMarker,
  type FunctionBuild,
  importersOf,
} from './build.ts';
import { loadedFrom } from './bundle.ts';
import { runChild } from './children.ts';
import { findings, row } from './report.ts';
import { type Bench, KINDS, SCHEDULED_EVENT } from './setup.ts';
import type { StoreKind } from './shared.ts';
import { kib, progress } from './stats.ts';

const SECTION = '3 clients';
const short = (name: string) => name.replace('@aws-sdk/', '').replace('lib/store/', '');

function storeModulesIn(b: FunctionBuild, outputs: string[]): string[] {
  return Object.keys(bytesByOrigin(b.metafile, outputs))
    .filter((key) => /^lib\/store\/[a-z0-9-]+-store\.ts$/.test(key))
    .sort();
}

interface KindReport {
  kind: StoreKind;
  parsedClients: string[];
  parsedStores: string[];
  evaluated: Set<string>;
  origins: Record<string, number>;
}

/** Facts about a module that should not be there: whether it is evaluated too, and who imports it. */
function explainUnwanted(bench: Bench, b: FunctionBuild, r: KindReport, other: string): void {
  const splitting = Boolean(bench.settings.options.splitting);
  const path = other.startsWith('lib/')
    ? other
    : (Object.keys(b.metafile.inputs).find((i) => i.endsWith(`${other}/dist-es/index.js`)) ?? other);
  findings.push(
    `clients, scheduled (${r.kind}): ${other} is parsed${r.evaluated.has(other) ? ' and evaluated' : ''}` +
      `${splitting ? '' : ' (one bundle file without code splitting)'}; imported by ${importersOf(b.metafile, path).join(', ') || '?'}`,
  );
}

function reportKind(bench: Bench, b: FunctionBuild, r: KindReport): void {
  const { kind, parsedClients, parsedStores, evaluated, origins } = r;
  const otherStore = kind === 's3' ? 'lib/store/secrets-manager-store.ts' : 'lib/store/s3-store.ts';
  const otherClient = kind === 's3' ? '@aws-sdk/client-secrets-manager' : '@aws-sdk/client-s3';
  const unwanted = [otherStore, ...(kind === 'secretsmanager' ? [otherClient] : [])];
  for (const other of unwanted) {
    const present = other.startsWith('lib/') ? parsedStores.includes(other) : parsedClients.includes(other);
    if (present) explainUnwanted(bench, b, r, other);
  }
  const oneFile = bench.settings.options.splitting ? '' : ' (one file: everything in the bundle is parsed)';
  row(
    SECTION,
    `scheduled (${kind}): parsed`,
    `${parsedClients.map((c) => `${short(c)} ${kib(origins[c] ?? 0)}`).join(', ')}; stores: ${parsedStores.map(short).join(', ')}${oneFile}`,
  );
  row(SECTION, `scheduled (${kind}): evaluated`, [...evaluated].sort().map(short).join(', ') || 'none');
  const evaluatedToo = (name: string) => (evaluated.has(name) ? ', evaluated' : '');
  row(
    SECTION,
    `scheduled (${kind}): other store module parsed?`,
    `${short(otherStore)}: ${parsedStores.includes(otherStore) ? 'parsed' : 'not parsed'}${evaluatedToo(otherStore)}`,
    'not parsed',
    !parsedStores.includes(otherStore),
  );
  const clientParsed = parsedClients.includes(otherClient) ? 'parsed' : 'not parsed';
  if (kind === 'secretsmanager') {
    row(
      SECTION,
      `scheduled (${kind}): S3 client parsed?`,
      `${short(otherClient)}: ${clientParsed}${evaluatedToo(otherClient)}`,
      'not parsed',
      !parsedClients.includes(otherClient),
    );
  } else {
    row(
      SECTION,
      `scheduled (${kind}): SM client`,
      `${clientParsed}${evaluatedToo(otherClient)}: needed for the app secret (KITE_API_SECRET_ID)`,
    );
  }
}

/** Section 3, for the scheduled function and each store kind. */
export async function clientsSection(bench: Bench): Promise<Record<string, unknown>> {
  progress('store clients loaded by the scheduled function');
  const b = bench.scheduled;
  if (!b) return {};
  const instrumented = await buildFunction(
    bench.projectDir,
    bench.settings,
    b.fn,
    join(bench.workDir, 'instrumented'),
    [evaluationMarker],
  );
  const results: Record<string, unknown> = {};
  for (const kind of KINDS) {
    await bench.servers.call({ op: 'seed', expired: false, stores: KINDS });
    const spec = { trace: true, invocations: 2, event: SCHEDULED_EVENT };
    const run = runChild({ ...spec, file: b.entryFile }, bench.envFor(kind));
    const marked = runChild({ ...spec, file: instrumented.entryFile }, bench.envFor(kind));
    const l = loadedFrom(bench.projectDir, b, run);
    const r: KindReport = {
      kind,
      parsedClients: clientsIn(b.metafile, l.outputs),
      parsedStores: storeModulesIn(b, l.outputs),
      evaluated: new Set(marked.evaluated),
      origins: bytesByOrigin(b.metafile, l.outputs),
    };
    results[kind] = {
      statuses: run.statuses,
      error: run.error,
      splitting: Boolean(bench.settings.options.splitting),
      filesLoaded: l.outputs.length,
      parsedClients: Object.fromEntries(r.parsedClients.map((c) => [c, r.origins[c] ?? 0])),
      parsedStoreModules: Object.fromEntries(r.parsedStores.map((s) => [s, r.origins[s] ?? 0])),
      evaluated: [...r.evaluated].sort(),
      evaluatedRunStatuses: marked.statuses,
    };
    reportKind(bench, b, r);
  }
  return results;
}
