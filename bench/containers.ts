// A storm across containers: N refreshers, each built the way a separate Lambda container builds its own (its own
// createRefresher, S3Store, S3Client with its own socket pool, Kite client), started together after Kite's flush.
// Inside one container concurrent identical requests share one run; across containers only the lease in the
// document keeps them to one Kite renewal, and the waiters learn of the new token by polling S3.
//
// All N run in this process, so they share one event loop and one core, where real containers each have their
// own: the CPU and event-loop figures recorded next to the times say how much of the time that cost.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { S3Client } from '@aws-sdk/client-s3';
import { BUCKET, KEY } from './shared.ts';
import { connectionsOpened, type RequestTrace, startTimeline, stopTimeline } from './timeline.ts';

export interface ContainerStormSettings {
  n: number;
  s3Endpoint: string;
  kiteUrl: string;
  configUri: string;
  appSecret: string;
  /** Seeds the document, flushes Kite and resets the servers' counts; answers the flushed access token. */
  prepare(): Promise<string>;
}

export interface ContainerStormRun {
  /** Time to answer per refresher, from the common start, in ms. */
  times: number[];
  /** Outcomes by status, or error:<name>. */
  outcomes: Record<string, number>;
  /** Distinct access tokens the refreshers answered with. */
  tokens: number;
  wallMs: number;
  /** This process's CPU (user + system) during the storm. */
  cpuMs: number;
  eventLoopUtilization: number;
  /** Event-loop delay during the storm (monitorEventLoopDelay, 1 ms resolution). */
  loopDelayP50Ms: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** TCP connections opened during the storm (the warm clients' keep-alive sockets should serve it all). */
  connectionsOpened: number;
  traces: RequestTrace[];
}

export async function stormAcrossContainers(settings: ContainerStormSettings): Promise<ContainerStormRun> {
  // Loaded here, after the bench has set the handlers' environment, like the handlers themselves.
  const { createRefresher } = await import('../lib/engine/refresher.ts');
  const { createS3Client, S3Store } = await import('../lib/store/s3-store.ts');
  const { silentLog } = await import('../lib/shared/log.ts');

  const clients: S3Client[] = [];
  try {
    const containers = await Promise.all(
      Array.from({ length: settings.n }, async () => {
        // The client a container's openStore builds (createS3Client: path-style for a custom endpoint, the
        // product's timeouts), pointed at the emulator explicitly rather than through the shared environment.
        const client = createS3Client({
          endpoint: settings.s3Endpoint,
          region: 'ap-south-1',
          credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
        });
        clients.push(client);
        const store = new S3Store({ bucket: BUCKET, key: KEY, client });
        const refresher = await createRefresher({
          configUri: settings.configUri,
          appSecret: settings.appSecret,
          log: silentLog,
          store,
        });
        return { store, refresher };
      }),
    );
    // Warm containers: each has read the document once (credentials resolved, a keep-alive socket open, the
    // ETag cached), as the on-demand handler in the one-container storm has.
    await Promise.all(containers.map((c) => c.store.read()));
    const flushedToken = await settings.prepare();

    const times: number[] = new Array(settings.n).fill(0);
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    const cpuBefore = process.cpuUsage();
    const eluBefore = performance.eventLoopUtilization();
    startTimeline(settings.kiteUrl);
    const t0 = performance.now();
    const answers = await Promise.all(
      containers.map(({ refresher }, i) =>
        refresher.refresh({ failedAccessToken: flushedToken }).then(
          (outcome) => {
            times[i] = performance.now() - t0;
            return {
              status: outcome.status,
              token: 'accessToken' in outcome ? outcome.accessToken : undefined,
            };
          },
          (e: unknown) => {
            times[i] = performance.now() - t0;
            return { status: `error:${e instanceof Error ? e.name : 'unknown'}`, token: undefined };
          },
        ),
      ),
    );
    const wallMs = performance.now() - t0;
    const traces = stopTimeline();
    const elu = performance.eventLoopUtilization(eluBefore).utilization;
    const cpu = process.cpuUsage(cpuBefore);
    loopDelay.disable();

    const outcomes: Record<string, number> = {};
    const tokens = new Set<string>();
    for (const a of answers) {
      outcomes[a.status] = (outcomes[a.status] ?? 0) + 1;
      if (a.token) tokens.add(a.token);
    }
    return {
      times,
      outcomes,
      tokens: tokens.size,
      wallMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      eventLoopUtilization: elu,
      loopDelayP50Ms: loopDelay.percentile(50) / 1e6,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
      connectionsOpened: connectionsOpened(),
      traces,
    };
  } finally {
    for (const client of clients) client.destroy();
  }
}
