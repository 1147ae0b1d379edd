// Types for the osls plugin, so TypeScript tests can import its check.
export function onDemandInvokersProblem(value: unknown): string | undefined;
export const AUTO_CONCURRENCY: number;
export function concurrencyProblem(value: unknown): string | undefined;
export function reservableConcurrency(
  limit: { ConcurrentExecutions?: number; UnreservedConcurrentExecutions?: number } | undefined,
  wanted?: number,
): number;
export function reserveLoginCallbackConcurrency(input: {
  setting: unknown;
  template: { Resources?: Record<string, { Properties: Record<string, unknown> }> } | undefined;
  lambda: { send(command: unknown): Promise<unknown> };
  log: { notice(text: string): void; warning(text: string): void };
}): Promise<number>;
export default class ParameterChecks {
  constructor(serverless: unknown);
  hooks: Record<string, () => void>;
}
