// The bench's side of the server process (bench/servers.ts): starts it and sends it requests over the fork IPC
// channel; also counts what the servers saw in the terms the table uses.
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import type { Counts, Request } from './shared.ts';
import { sum } from './stats.ts';

export interface Servers {
  call<T = unknown>(request: Request): Promise<T>;
  close(): Promise<void>;
  child: ChildProcess;
}

interface Message {
  ready?: boolean;
  id?: number;
  ok?: boolean;
  result?: unknown;
  error?: string;
}

type Waiter = { done: (v: unknown) => void; fail: (e: Error) => void };

function answer(pending: Map<number, Waiter>, message: Message): void {
  const waiter = message.id === undefined ? undefined : pending.get(message.id);
  if (!waiter || message.id === undefined) return;
  pending.delete(message.id);
  if (message.ok) waiter.done(message.result);
  else waiter.fail(new Error(`server process: ${message.error}`));
}

/** Forks bench/servers.ts with `env` and resolves once its servers listen. */
export async function startServers(projectDir: string, env: NodeJS.ProcessEnv): Promise<Servers> {
  const child = fork(join(projectDir, 'bench', 'servers.ts'), [], {
    execPath: process.execPath,
    env,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  const pending = new Map<number, Waiter>();
  let nextId = 1;
  await new Promise<void>((ready, fail) => {
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`the server process exited (${code}) before it was ready`)));
    child.on('message', (message: Message) => (message.ready ? ready() : answer(pending, message)));
  });
  child.removeAllListeners('exit');
  child.on('exit', () => {
    for (const waiter of pending.values()) waiter.fail(new Error('the server process exited'));
    pending.clear();
  });
  const call = <T = unknown>(request: Request): Promise<T> => {
    const id = nextId++;
    return new Promise<T>((done, fail) => {
      pending.set(id, { done: done as (v: unknown) => void, fail });
      child.send({ id, ...request });
    });
  };
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    await call({ op: 'close' }).catch(() => {});
    const timer = setTimeout(() => child.kill(), 5_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, call, close };
}

/** AWS requests in a count: S3 requests, Secrets Manager operations and SNS publishes. */
export function awsCalls(c: Counts): { total: number; reads: number; writes: number; detail: string } {
  const s3 = sum(c.s3);
  const sm = sum(c.secretsManager);
  const reads =
    Object.entries(c.s3)
      .filter(([k]) => k.startsWith('GET') || k.startsWith('HEAD'))
      .reduce((a, [, v]) => a + v, 0) +
    (c.secretsManager.GetSecretValue ?? 0) +
    (c.secretsManager.DescribeSecret ?? 0);
  const parts = [
    ...Object.entries(c.s3).map(([k, v]) => `S3 ${k} ×${v}`),
    ...Object.entries(c.secretsManager).map(([k, v]) => `SM ${k} ×${v}`),
    ...(c.snsPublishes ? [`SNS Publish ×${c.snsPublishes}`] : []),
  ];
  return {
    total: s3 + sm + c.snsPublishes,
    reads,
    writes: s3 + sm + c.snsPublishes - reads,
    detail: parts.join(', '),
  };
}

export const kiteCalls = (c: Counts) => sum(c.kite);
export const renewalsIn = (c: Counts) => c.kite['POST /session/refresh_token'] ?? 0;
