// The fan-out: one notice, every configured channel at once. A channel that fails is counted (NotifyFailed, by
// Channel) and logged without its URL or token, and does not hold up the others; the notice fails only when no
// channel took it, so a caller can give back what it claimed.
import { AppError, describeError, NotifyError } from '../shared/errors.ts';
import type { Log } from '../shared/log.ts';
import type { Notice, Notify, NotifyOptions } from './notice.ts';

export type ChannelName = 'sns' | 'telegram' | 'webhook';

export type SendOptions = NotifyOptions;

/** One place a notice can be said. */
export interface Channel {
  name: ChannelName;
  send(notice: Notice, options: SendOptions): Promise<void>;
}

/** Powertools' Metrics fits: a single metric carries its own Channel dimension. */
export interface NotifyMetricsSink {
  singleMetric(): {
    addDimension(name: string, value: string): unknown;
    addMetric(name: string, unit: 'Count', value: number): unknown;
  };
}

/**
 * A failure as a log line may show it: the product's own errors and AWS's are written to be safe; anything else from
 * a channel that holds a credential in its URL is named by its class only.
 */
export function safeDescription(e: unknown, channel: ChannelName): string {
  if (e instanceof AppError || channel === 'sns') return describeError(e);
  if (e instanceof Error && '$metadata' in e) return describeError(e);
  return e instanceof Error ? e.name : typeof e;
}

/** Sends on every channel concurrently; rejects with a NotifyError only when every one of them failed. */
export function fanOut(channels: readonly Channel[], deps: { log: Log; metrics: NotifyMetricsSink }): Notify {
  return async (notice: Notice, options: SendOptions = {}): Promise<void> => {
    const settled = await Promise.allSettled(channels.map((c) => c.send(notice, options)));
    const failures: string[] = [];
    settled.forEach((result, i) => {
      const channel = channels[i];
      if (result.status === 'fulfilled' || !channel) return;
      const why = safeDescription(result.reason, channel.name);
      failures.push(`${channel.name} (${why})`);
      const metric = deps.metrics.singleMetric();
      metric.addDimension('Channel', channel.name);
      metric.addMetric('NotifyFailed', 'Count', 1);
      deps.log.warn('A notification channel failed', {
        channel: channel.name,
        event: notice.event,
        error: why,
      });
    });
    if (channels.length > 0 && failures.length === channels.length) {
      throw new NotifyError(`every notification channel failed: ${failures.join('; ')}`, {
        channel: 'all',
        retryable: true,
      });
    }
  };
}
