// Checks the deployment parameters CloudFormation cannot check, before anything is packaged or deployed: a wrong
// value fails `osls package` and `osls deploy` with one message naming the parameter, not a stack half created.
// Plain JavaScript, so osls loads it on whatever Node runs it.

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

export default class ParameterChecks {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = { 'before:package:initialize': () => this.check() };
  }

  check() {
    const problem = onDemandInvokersProblem(this.serverless.service.custom?.onDemandInvokers);
    if (problem) {
      throw new this.serverless.classes.Error(`Parameter onDemandInvokers ${problem}.`, 'INVALID_PARAMETER');
    }
  }
}
