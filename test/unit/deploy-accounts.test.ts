import { describe, expect, it } from 'vitest';
import {
  accountsValue,
  addConfigSecrets,
  FIRST_SECRET_ID,
  readAccounts,
  secretLogicalId,
} from '../../deploy/accounts.mjs';

const DEFAULTS = {
  storeKind: 's3',
  configKey: 'broker-config.json',
  configKeys: '',
  configPrefix: '',
  configSecretName: 'kite-token-refresh/prod/broker-config',
  configSecretNames: '',
};
const problemsOf = (p: Partial<typeof DEFAULTS>) => readAccounts({ ...DEFAULTS, ...p }).problems;

describe('readAccounts', () => {
  it('serves configKey alone when no list or prefix is set, as a single-account stack always has', () => {
    const accounts = readAccounts(DEFAULTS);
    expect(accounts).toMatchObject({ problems: [], layout: 's3', keys: ['broker-config.json'], prefix: '' });
    expect(accounts.secrets).toEqual([
      { logicalId: 'ConfigSecret', name: 'kite-token-refresh/prod/broker-config' },
    ]);
  });

  it('reads a comma-separated list of keys, spaces around entries ignored', () => {
    expect(readAccounts({ ...DEFAULTS, configKeys: 'alice.json, family/bob.json' })).toMatchObject({
      problems: [],
      layout: 's3',
      keys: ['alice.json', 'family/bob.json'],
    });
  });

  it('reads a prefix', () => {
    expect(readAccounts({ ...DEFAULTS, configPrefix: 'accounts/' })).toMatchObject({
      problems: [],
      layout: 's3Prefix',
      prefix: 'accounts/',
    });
  });

  it.each([
    ['a wildcard', 'accounts/*.json'],
    ['a Fn::Sub reference', `\${AWS::AccountId}.json`],
    ['a leading slash', '/alice.json'],
    ['an empty path segment', 'a//b.json'],
    ['a rescue object', 'alice.json.rescue.json'],
  ])('refuses a key with %s, naming configKeys', (_, key) => {
    const problems = problemsOf({ configKeys: `bob.json,${key}` });
    expect(problems.map(([name]) => name)).toEqual(['configKeys']);
  });

  it('refuses a key listed twice and more keys than IAM policies comfortably hold', () => {
    expect(problemsOf({ configKeys: 'a.json,b.json,a.json' })[0]?.[1]).toContain('twice: "a.json"');
    const many = Array.from({ length: 21 }, (_, i) => `a${i}.json`).join(',');
    expect(problemsOf({ configKeys: many })[0]?.[1]).toContain('at most 20');
  });

  it('refuses keys or secret names the functions would give the same account name, which would stop them at start', () => {
    expect(problemsOf({ configKeys: 'alice/broker-config.json,bob/broker-config.json' })).toEqual([
      ['configKeys', expect.stringContaining('same account name')],
    ]);
    expect(
      problemsOf({ storeKind: 'secretsmanager', configSecretNames: 'prod/alice,staging/alice' })[0]?.[0],
    ).toBe('configSecretNames');
    expect(problemsOf({ configKeys: 'family/alice.json,family/bob.json' })).toEqual([]);
  });

  it.each([['accounts'], ['/accounts/'], ['accounts/*/'], ['acc ounts/']])(
    'refuses the prefix %j, which does not end in one "/" or holds a wildcard',
    (prefix) => {
      expect(problemsOf({ configPrefix: prefix }).map(([name]) => name)).toEqual(['configPrefix']);
    },
  );

  it('refuses keys and a prefix together', () => {
    expect(problemsOf({ configKeys: 'a.json', configPrefix: 'accounts/' })).toEqual([
      ['configPrefix', 'and configKeys name the accounts two ways; set one of them'],
    ]);
  });

  it("refuses the other store's parameters, naming them", () => {
    expect(problemsOf({ configSecretNames: 'kite/alice' }).map(([name]) => name)).toEqual([
      'configSecretNames',
    ]);
    expect(
      problemsOf({ storeKind: 'secretsmanager', configKeys: 'a.json', configPrefix: 'accounts/' }).map(
        ([name]) => name,
      ),
    ).toEqual(['configKeys', 'configPrefix']);
  });

  it('reads secret names and refuses a bad or repeated one', () => {
    const accounts = readAccounts({
      ...DEFAULTS,
      storeKind: 'secretsmanager',
      configSecretNames: 'kite/alice,kite/bob',
    });
    expect(accounts.problems).toEqual([]);
    expect(accounts.secrets.map(({ name }) => name)).toEqual(['kite/alice', 'kite/bob']);
    expect(
      problemsOf({ storeKind: 'secretsmanager', configSecretNames: 'kite/alice,kite/*' })[0]?.[1],
    ).toContain('"kite/*"');
    expect(problemsOf({ storeKind: 'secretsmanager', configSecretNames: 'kite/a,kite/a' })[0]?.[1]).toContain(
      'twice',
    );
  });
});

describe('secretLogicalId', () => {
  it("keeps ConfigSecret for configSecretName and derives the others' ids from their names alone", () => {
    expect(secretLogicalId('kite/prod', 'kite/prod')).toBe(FIRST_SECRET_ID);
    const alice = secretLogicalId('kite/alice', 'kite/prod');
    expect(alice).toMatch(/^ConfigSecretkitealice[0-9A-F]{8}$/);
    expect(secretLogicalId('kite/alice', 'kite/other')).toBe(alice);
    expect(secretLogicalId('kite-alice', 'kite/prod')).not.toBe(alice);
  });
});

describe('accountsValue', () => {
  const keys = readAccounts({ ...DEFAULTS, configKeys: 'a.json,b/c.json' });
  const prefix = readAccounts({ ...DEFAULTS, configPrefix: 'accounts/' });
  const secrets = readAccounts({
    ...DEFAULTS,
    storeKind: 'secretsmanager',
    configSecretNames: 'kite/a,kite/b',
  });

  it('gives the single document exactly the URI a single-account stack has always had', () => {
    expect(accountsValue(readAccounts(DEFAULTS), 'uri')).toEqual({
      'Fn::If': [
        'UseS3Store',
        { 'Fn::Sub': `s3://\${ConfigBucket}/broker-config.json` },
        { 'Fn::Sub': `secretsmanager://\${ConfigSecret}` },
      ],
    });
  });

  it('lists the documents, or the prefix, in BROKER_CONFIG_URI', () => {
    expect(accountsValue(keys, 'uri')).toMatchObject({
      'Fn::If': [
        'UseS3Store',
        { 'Fn::Sub': `s3://\${ConfigBucket}/a.json,s3://\${ConfigBucket}/b/c.json` },
        {},
      ],
    });
    expect(accountsValue(prefix, 'uri')).toMatchObject({
      'Fn::If': ['UseS3Store', { 'Fn::Sub': `s3://\${ConfigBucket}/accounts/` }, {}],
    });
    expect((accountsValue(secrets, 'uri') as { 'Fn::If': unknown[] })['Fn::If'][2]).toEqual({
      'Fn::Sub': 'secretsmanager://kite/a,secretsmanager://kite/b',
    });
  });

  it('names plain locations for the emulators', () => {
    const options = { target: 'emulators', bucket: 'kite-token-local' } as const;
    expect(accountsValue(keys, 'uri', options)).toBe(
      's3://kite-token-local/a.json,s3://kite-token-local/b/c.json',
    );
    expect(accountsValue(prefix, 'uri', options)).toBe('s3://kite-token-local/accounts/');
    expect(accountsValue(secrets, 'uri', options)).toBe('secretsmanager://kite/a,secretsmanager://kite/b');
  });

  it('grants each document and its rescue object, or everything under the prefix and its rescue objects', () => {
    const arn = (key: string) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:s3:::\${ConfigBucket}/${key}` });
    expect(accountsValue(keys, 's3DocumentArns')).toEqual([
      arn('a.json'),
      arn('a.json.rescue.json'),
      arn('b/c.json'),
      arn('b/c.json.rescue.json'),
    ]);
    expect(accountsValue(keys, 's3RescueArns')).toEqual([
      arn('a.json.rescue.json'),
      arn('b/c.json.rescue.json'),
    ]);
    expect(accountsValue(prefix, 's3DocumentArns')).toEqual([arn('accounts/*')]);
    expect(accountsValue(prefix, 's3RescueArns')).toEqual([arn('accounts/*.rescue.json')]);
  });

  it('refuses an address it does not know', () => {
    expect(() => accountsValue(keys, 'bucket')).toThrow(/unknown address "bucket"/);
  });
});

describe('addConfigSecrets', () => {
  const configSecret = () => ({
    Type: 'AWS::SecretsManager::Secret',
    Condition: 'UseSecretsManagerStore',
    Properties: { Name: 'kite/prod', Description: 'broker-config.json' },
  });

  it('adds a copy of ConfigSecret for each other name, and keeps ConfigSecret when its name is listed', () => {
    const resources: Record<string, ReturnType<typeof configSecret>> = { ConfigSecret: configSecret() };
    addConfigSecrets(
      resources,
      readAccounts({
        ...DEFAULTS,
        storeKind: 'secretsmanager',
        configSecretName: 'kite/prod',
        configSecretNames: 'kite/prod,kite/alice',
      }).secrets,
    );
    const alice = secretLogicalId('kite/alice', 'kite/prod');
    expect(Object.keys(resources).sort()).toEqual([FIRST_SECRET_ID, alice].sort());
    expect(resources[alice]).toEqual({
      ...configSecret(),
      Properties: { ...configSecret().Properties, Name: 'kite/alice' },
    });
    expect(resources.ConfigSecret?.Properties.Name).toBe('kite/prod');
  });

  it('drops ConfigSecret when its name is not listed', () => {
    const resources: Record<string, ReturnType<typeof configSecret>> = { ConfigSecret: configSecret() };
    addConfigSecrets(
      resources,
      readAccounts({
        ...DEFAULTS,
        storeKind: 'secretsmanager',
        configSecretName: 'kite/prod',
        configSecretNames: 'kite/alice',
      }).secrets,
    );
    expect(Object.keys(resources)).toEqual([secretLogicalId('kite/alice', 'kite/prod')]);
  });
});
