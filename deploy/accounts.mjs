// The Kite accounts one deployment serves, from its parameters: object keys (configKeys) or a prefix (configPrefix)
// in the stack's bucket, or secret names (configSecretNames). CloudFormation has no loops, so the lists become
// BROKER_CONFIG_URI, the IAM resources and the config secrets here, when osls resolves `${accounts:…}` in
// serverless.yml. With none of the three set, the output is the single document of configKey or configSecretName,
// exactly as before these parameters existed. Plain JavaScript, like the plugin that loads it.

import { createHash } from 'node:crypto';

/** More than this many listed documents would push the functions' IAM policies towards IAM's size limit. */
export const MAX_LISTED_ACCOUNTS = 20;

// Characters safe in an object key, an IAM ARN and a CloudFormation Fn::Sub string alike: no `*` or `?` (IAM
// wildcards), no `$` (Fn::Sub), no `,` (the list separator), no spaces.
const KEY_PART = '[A-Za-z0-9._=+@-]+';
const OBJECT_KEY = new RegExp(`^${KEY_PART}(/${KEY_PART})*$`);
const OBJECT_PREFIX = new RegExp(`^(${KEY_PART}/)+$`);
// Secrets Manager's own rule for names.
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const RESCUE_SUFFIX = '.rescue.json';

/** The logical id of the config secret that existed before lists did; it keeps configSecretName's secret. */
export const FIRST_SECRET_ID = 'ConfigSecret';

const entries = (value) =>
  String(value ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');

const quoted = (values) => values.map((v) => JSON.stringify(v.slice(0, 80))).join(', ');

function duplicates(values) {
  return [...new Set(values.filter((v, i) => values.indexOf(v) !== i))];
}

/** An account's name, as the functions derive it (lib/accounts/location.ts): the key's last segment without .json. */
export function accountNameOf(key) {
  const last = key.split('/').filter(Boolean).pop() ?? '';
  return last.replace(/\.json$/i, '') || last;
}

/** Documents that the functions would give the same account name: they would refuse to start. */
function sameNames(keys) {
  const names = keys.map(accountNameOf);
  const clashing = duplicates(names);
  if (clashing.length === 0) return undefined;
  const clash = keys.filter((key) => clashing.includes(accountNameOf(key)));
  return `gives two documents the same account name (an account is named after its key's last segment without .json): ${quoted(clash)}`;
}

function keyProblem(keys) {
  if (keys.length > MAX_LISTED_ACCOUNTS) {
    return `lists ${keys.length} keys; at most ${MAX_LISTED_ACCOUNTS} (for more, keep them under one prefix and set configPrefix)`;
  }
  const bad = keys.filter((key) => !OBJECT_KEY.test(key) || key.length > 512);
  if (bad.length > 0) {
    return `accepts object keys of letters, digits and . _ = + @ - separated by single slashes; refused: ${quoted(bad)}`;
  }
  const rescue = keys.filter((key) => key.endsWith(RESCUE_SUFFIX));
  if (rescue.length > 0) return `names a rescue object, not a document: ${quoted(rescue)}`;
  const twice = duplicates(keys);
  if (twice.length > 0) return `names a document twice: ${quoted(twice)}`;
  return sameNames(keys);
}

function prefixProblem(prefix) {
  if (OBJECT_PREFIX.test(prefix) && prefix.length <= 512) return undefined;
  return `must be a key prefix ending in "/" (e.g. accounts/), of letters, digits and . _ = + @ -; refused: ${quoted([prefix])}`;
}

function secretNamesProblem(names) {
  if (names.length > MAX_LISTED_ACCOUNTS)
    return `lists ${names.length} secrets; at most ${MAX_LISTED_ACCOUNTS}`;
  const bad = names.filter((name) => !SECRET_NAME.test(name));
  if (bad.length > 0)
    return `accepts secret names of letters, digits and / _ + = . @ -; refused: ${quoted(bad)}`;
  const twice = duplicates(names);
  if (twice.length > 0) return `names a secret twice: ${quoted(twice)}`;
  return sameNames(names);
}

/** Problems with the S3 parameters: at most one of configKeys and configPrefix, each well formed. */
function s3Problems({ listedKeys, prefix, listedNames }) {
  const problems = [];
  if (listedNames.length > 0) {
    problems.push([
      'configSecretNames',
      'applies to storeKind=secretsmanager; with S3, set configKeys or configPrefix',
    ]);
  }
  if (prefix !== '' && listedKeys.length > 0) {
    problems.push(['configPrefix', 'and configKeys name the accounts two ways; set one of them']);
  } else if (prefix !== '') {
    problems.push(['configPrefix', prefixProblem(prefix)]);
  } else if (listedKeys.length > 0) {
    problems.push(['configKeys', keyProblem(listedKeys)]);
  }
  return problems;
}

/** Problems with the Secrets Manager parameters: only configSecretNames applies, well formed. */
function secretsManagerProblems({ listedKeys, prefix, listedNames }) {
  const problems = [];
  if (listedKeys.length > 0) {
    problems.push(['configKeys', 'applies to storeKind=s3; with Secrets Manager, set configSecretNames']);
  }
  if (prefix !== '') {
    problems.push([
      'configPrefix',
      'applies to storeKind=s3; Secrets Manager accounts are named in configSecretNames (ListSecrets cannot be ' +
        'limited to some secrets by IAM)',
    ]);
  }
  if (listedNames.length > 0) problems.push(['configSecretNames', secretNamesProblem(listedNames)]);
  return problems;
}

/**
 * The accounts the parameters name. `problems` holds [parameter, problem] pairs; the rest is meaningful only when it
 * is empty. `layout` is `s3` (listed keys), `s3Prefix` or `secretsmanager`. Both stores' documents are worked out
 * whatever storeKind is, since BROKER_CONFIG_URI keeps a CloudFormation choice between them.
 */
export function readAccounts(p) {
  const storeKind = String(p.storeKind ?? 's3');
  const given = {
    listedKeys: entries(p.configKeys),
    prefix: String(p.configPrefix ?? '').trim(),
    listedNames: entries(p.configSecretNames),
  };
  const { listedKeys, listedNames } = given;
  const prefix = listedKeys.length > 0 ? '' : given.prefix;
  const problems = (storeKind === 's3' ? s3Problems(given) : secretsManagerProblems(given)).filter(
    ([, problem]) => problem !== undefined,
  );
  const secretNames = listedNames.length > 0 ? listedNames : [String(p.configSecretName ?? '')];
  return {
    problems,
    storeKind,
    layout: storeKind !== 's3' ? 'secretsmanager' : prefix !== '' ? 's3Prefix' : 's3',
    keys: listedKeys.length > 0 ? listedKeys : [String(p.configKey ?? '')],
    prefix,
    secrets: secretNames.map((name) => ({ logicalId: secretLogicalId(name, p.configSecretName), name })),
    secretsListed: listedNames.length > 0,
  };
}

/**
 * A config secret's logical id: `ConfigSecret` for configSecretName (the secret a single-account stack has always
 * had), otherwise one derived from the name alone, so reordering the list never replaces a secret and its tokens.
 */
export function secretLogicalId(name, configSecretName) {
  if (name === String(configSecretName ?? '')) return FIRST_SECRET_ID;
  const readable = name.replace(/[^A-Za-z0-9]/g, '').slice(0, 48);
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8).toUpperCase();
  return `${FIRST_SECRET_ID}${readable}${hash}`;
}

const sub = (text) => ({ 'Fn::Sub': text });
const objectArn = (key) => sub(`arn:\${AWS::Partition}:s3:::\${ConfigBucket}/${key}`);

/**
 * What `${accounts:<address>}` stands for. `target` is `stack` (the resources the stack creates, as CloudFormation
 * names them) or `emulators` (plain names in `bucket` and the listed secrets, which `osls invoke local` can use).
 */
export function accountsValue(accounts, address, { target = 'stack', bucket = '' } = {}) {
  const { layout, keys, prefix, secrets } = accounts;
  const s3Documents = layout === 's3Prefix' ? [prefix] : keys;
  switch (address) {
    case 'layout':
      return layout;
    case 'uri':
      if (target === 'emulators') {
        return accounts.storeKind === 's3'
          ? s3Documents.map((key) => `s3://${bucket}/${key}`).join(',')
          : secrets.map(({ name }) => `secretsmanager://${name}`).join(',');
      }
      return {
        'Fn::If': [
          'UseS3Store',
          sub(s3Documents.map((key) => `s3://\${ConfigBucket}/${key}`).join(',')),
          // A listed secret by its name, which is also the account's name; the single secret by its ARN, as always.
          sub(
            secrets
              .map(
                ({ logicalId, name }) =>
                  `secretsmanager://${accounts.secretsListed ? name : `\${${logicalId}}`}`,
              )
              .join(','),
          ),
        ],
      };
    case 's3DocumentArns':
      return layout === 's3Prefix'
        ? [objectArn(`${prefix}*`)]
        : keys.flatMap((key) => [objectArn(key), objectArn(`${key}${RESCUE_SUFFIX}`)]);
    case 's3RescueArns':
      return layout === 's3Prefix'
        ? [objectArn(`${prefix}*${RESCUE_SUFFIX}`)]
        : keys.map((key) => objectArn(`${key}${RESCUE_SUFFIX}`));
    case 's3Prefix':
      return prefix;
    case 'secretArns':
      return secrets.map(({ logicalId }) => ({ Ref: logicalId }));
    case 'secrets':
      return secrets;
    default:
      throw new Error(
        `unknown address "${address}"; use layout, uri, s3DocumentArns, s3RescueArns, s3Prefix, secretArns or secrets`,
      );
  }
}

/**
 * Adds a config secret for each listed name to the service's resources, each a copy of the `ConfigSecret` that
 * serverless.yml defines (so they are alike in every other way), and drops that one when its name is not listed.
 */
export function addConfigSecrets(resources, secrets) {
  const template = resources?.[FIRST_SECRET_ID];
  if (!template || !Array.isArray(secrets)) return;
  for (const { logicalId, name } of secrets) {
    if (logicalId === FIRST_SECRET_ID) continue;
    const copy = structuredClone(template);
    copy.Properties.Name = name;
    resources[logicalId] = copy;
  }
  if (!secrets.some(({ logicalId }) => logicalId === FIRST_SECRET_ID)) delete resources[FIRST_SECRET_ID];
}
