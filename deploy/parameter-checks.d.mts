// Types for the osls plugin, so TypeScript tests can import its check.
export function onDemandInvokersProblem(value: unknown): string | undefined;
export default class ParameterChecks {
  constructor(serverless: unknown);
  hooks: Record<string, () => void>;
}
