// Checks the deployment parameters CloudFormation cannot check, before anything is packaged or deployed: a wrong
// value fails `osls package` and `osls deploy` with one message naming the parameter, not a stack half created.
// At deploy it also decides the login callback's reserved concurrency from the account's quota (`auto`). It resolves
// `${accounts:…}` in serverless.yml (deploy/accounts.mjs: the documents the functions serve), and lets
// `osls invoke local` load the functions' ES module handlers. Plain JavaScript, so osls loads it on whatever Node runs it.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { accountsValue, addConfigSecrets, readAccounts } from './accounts.mjs';

const ACCOUNT_ID = /^\d{12}$/;
// An IAM principal of one account: the account root, a role or a user (paths allowed). Never a service principal:
// `s3.amazonaws.com` without a source condition would let any bucket's events invoke the function.
const PRINCIPAL_ARN = /^arn:aws(-[a-z]+)*:iam::\d{12}:(root|(role|user)\/[\w+=,.@/-]{1,512})$/;
const MAX_INVOKERS = 5;

/** The problem with an onDemandInvokers value, or undefined when every entry is an account id or IAM principal ARN. */
export function onDemandInvokersProblem(value) {
  const entries = String(value ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length > MAX_INVOKERS) return `lists ${entries.length} principals; at most ${MAX_INVOKERS}`;
  const bad = entries.filter((entry) => !ACCOUNT_ID.test(entry) && !PRINCIPAL_ARN.test(entry));
  if (bad.length === 0) return undefined;
  return (
    `accepts only 12-digit account ids and IAM role, user or root ARNs (arn:aws:iam::<account>:role/<name>); ` +
    `refused: ${bad.map((entry) => JSON.stringify(entry.slice(0, 80))).join(', ')}`
  );
}

/** The problem with a loginCallbackConcurrency value, or undefined for "auto", "none", "" or a whole number ≥ 1. */
export function concurrencyProblem(value) {
  const text = String(value ?? '');
  if (['', 'auto', 'none'].includes(text) || /^[1-9]\d{0,4}$/.test(text)) return undefined;
  return 'must be "auto", "none" or a whole number of executions (e.g. 2)';
}

/** What `loginCallbackConcurrency=auto` reserves when the account's quota allows it. */
export const AUTO_CONCURRENCY = 2;

/**
 * How much of the account's concurrency the login callback may reserve: `wanted` when Lambda's unreserved pool
 * keeps its minimum after it (100, or the whole quota of a smaller account: a new account's 10 leaves none), else 0.
 */
export function reservableConcurrency(limit, wanted = AUTO_CONCURRENCY) {
  const quota = Number(limit?.ConcurrentExecutions ?? 0);
  const unreserved = Number(limit?.UnreservedConcurrentExecutions ?? 0);
  return unreserved - wanted >= Math.min(100, quota) ? wanted : 0;
}

/**
 * For `loginCallbackConcurrency=auto`: asks Lambda for the account's concurrency (GetAccountSettings) and writes the
 * reservation into the template, or leaves none and says why. Returns what was reserved.
 */
export async function reserveLoginCallbackConcurrency({ setting, template, lambda, log }) {
  const callback = template?.Resources?.LoginCallbackLambdaFunction;
  if (String(setting ?? '') !== 'auto' || !callback) return 0;
  const { GetAccountSettingsCommand } = await import('@aws-sdk/client-lambda');
  const { AccountLimit } = await lambda.send(new GetAccountSettingsCommand({}));
  const reserved = reservableConcurrency(AccountLimit);
  if (reserved > 0) {
    callback.Properties.ReservedConcurrentExecutions = reserved;
    log.notice(`Login callback: ${reserved} reserved concurrent executions (loginCallbackConcurrency=auto).`);
  } else {
    delete callback.Properties.ReservedConcurrentExecutions;
    log.warning(
      `Login callback: no reserved concurrency. The account's Lambda concurrency quota ` +
        `(${AccountLimit?.ConcurrentExecutions ?? 'unknown'}) leaves none to reserve, so a flood of requests to the ` +
        'public callback URL can take concurrency from other functions. Ask AWS to raise the quota ' +
        '(Service Quotas, "Concurrent executions") and deploy again.',
    );
  }
  return reserved;
}

export default class ParameterChecks {
  constructor(serverless, _options, utils) {
    this.serverless = serverless;
    this.log = utils?.log ?? { notice: console.log, warning: console.warn };
    this.hooks = {
      'before:package:initialize': () => this.check(),
      'before:deploy:deploy': () => this.reserve(),
      'before:invoke:local:invoke': () => this.loadableHandler(),
    };
    this.configurationVariablesSources = {
      accounts: { resolve: (input) => this.resolveAccounts(input) },
    };
  }

  /** `${accounts:<address>}`: the accounts' store locations and IAM resources; a bad parameter stops the command. */
  async resolveAccounts({ address, resolveVariable }) {
    const read = async (name) => String((await resolveVariable(name)) ?? '');
    const accounts = readAccounts({
      storeKind: await read('self:custom.storeKind'),
      configKey: await read('param:configKey'),
      configKeys: await read('param:configKeys'),
      configPrefix: await read('param:configPrefix'),
      configSecretName: await read('param:configSecretName'),
      configSecretNames: await read('param:configSecretNames'),
    });
    if (accounts.problems.length > 0) {
      const text = accounts.problems.map(([name, problem]) => `Parameter ${name} ${problem}.`).join(' ');
      throw new this.serverless.classes.Error(text, 'INVALID_PARAMETER');
    }
    const target = await read('self:custom.settingsTarget');
    const bucket = target === 'emulators' ? await read('self:custom.settings.emulators.bucket') : '';
    return { value: accountsValue(accounts, address, { target, bucket }) };
  }

  /**
   * osls's `invoke local` loads a handler with require(), trying `<handler>` and `<handler>.cjs`, so it never finds the
   * `.mjs` files esbuild writes. A `.cjs` next to each one imports it on first call, as Lambda's runtime would.
   */
  async loadableHandler() {
    const fn = this.serverless.service.getFunction(this.serverless.processedInput?.options?.function);
    const handler = String(fn?.handler ?? '');
    const file = handler.slice(0, handler.lastIndexOf('.'));
    const name = handler.slice(handler.lastIndexOf('.') + 1);
    if (!file || !name) return;
    const base = file.split('/').pop();
    const shim =
      `// Written by deploy/parameter-checks.mjs for osls invoke local.\n` +
      `exports[${JSON.stringify(name)}] = async (...args) =>\n` +
      `  (await import(${JSON.stringify(`./${base}.mjs`)}))[${JSON.stringify(name)}](...args);\n`;
    await writeFile(join(this.serverless.serviceDir, `${file}.cjs`), shim);
  }

  async reserve() {
    const provider = this.serverless.getProvider('aws');
    const { LambdaClient } = await import('@aws-sdk/client-lambda');
    await reserveLoginCallbackConcurrency({
      setting: this.serverless.service.custom?.loginCallbackConcurrency,
      template: this.serverless.service.provider.compiledCloudFormationTemplate,
      lambda: new LambdaClient({
        region: provider.getRegion(),
        credentials: provider.getAwsSdkV3CredentialsProvider(),
      }),
      log: this.log,
    });
  }

  check() {
    const custom = this.serverless.service.custom ?? {};
    const problems = [
      ['onDemandInvokers', onDemandInvokersProblem(custom.onDemandInvokers)],
      ['loginCallbackConcurrency', concurrencyProblem(custom.loginCallbackConcurrency)],
    ].filter(([, problem]) => problem);
    if (problems.length > 0) {
      const text = problems.map(([name, problem]) => `Parameter ${name} ${problem}.`).join(' ');
      throw new this.serverless.classes.Error(text, 'INVALID_PARAMETER');
    }
    addConfigSecrets(this.serverless.service.resources?.Resources, custom.configSecrets);
  }
}
