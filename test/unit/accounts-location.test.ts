import { describe, expect, it } from 'vitest';
import { isAccountKey } from '../../lib/accounts/listing.ts';
import { accountNameOf, parseAccountsLocation } from '../../lib/accounts/location.ts';
import { ConfigError } from '../../lib/shared/errors.ts';

describe('parseAccountsLocation', () => {
  it('reads one document as a single account, exactly as the store would open it', () => {
    const location = parseAccountsLocation(' s3://bucket/conf/broker-config.json ');
    expect(location).toEqual({
      kind: 'single',
      document: {
        name: 'broker-config',
        uri: 's3://bucket/conf/broker-config.json',
        location: { kind: 's3', bucket: 'bucket', key: 'conf/broker-config.json' },
      },
    });
  });

  it('reads a comma-separated list of documents in any mix of stores', () => {
    const location = parseAccountsLocation(
      'file:///data/alice.json, s3://bucket/bob.json,secretsmanager://kite/carol,/tmp/dave.json',
    );
    expect(location.kind).toBe('list');
    const documents = location.kind === 'list' ? location.documents : [];
    expect(documents.map((d) => [d.name, d.location.kind])).toEqual([
      ['alice', 'file'],
      ['bob', 's3'],
      ['carol', 'secretsmanager'],
      ['dave', 'file'],
    ]);
  });

  it('reads an S3 location ending in a slash as a prefix of account documents', () => {
    expect(parseAccountsLocation('s3://bucket/accounts/')).toEqual({
      kind: 's3-prefix',
      bucket: 'bucket',
      prefix: 'accounts/',
      uri: 's3://bucket/accounts/',
    });
  });

  it('refuses two documents that would get the same account name, naming the setting', () => {
    const attempt = () => parseAccountsLocation('/a/broker-config.json,/b/broker-config.json', '--config');
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/--config: .*both be account "broker-config"/);
  });

  it('refuses an empty entry and a prefix inside a list', () => {
    expect(() => parseAccountsLocation('a.json,,b.json')).toThrow(/empty entry/);
    expect(() => parseAccountsLocation('a.json,s3://bucket/accounts/')).toThrow(
      /prefix cannot be part of a list/,
    );
  });

  it('refuses a location no store understands, as a single document always was', () => {
    expect(() => parseAccountsLocation('ftp://host/x.json')).toThrow(ConfigError);
  });
});

describe('accountNameOf', () => {
  it('names an account after the last segment of its document key, without .json', () => {
    expect(accountNameOf('accounts/alice.json')).toBe('alice');
    expect(accountNameOf('prod/kite/bob')).toBe('bob');
    expect(accountNameOf('arn:aws:secretsmanager:ap-south-1:123456789012:secret:kite/carol-AbCdEf')).toBe(
      'carol-AbCdEf',
    );
  });
});

describe('isAccountKey', () => {
  it('takes json objects directly under the prefix, not rescue slots or nested keys', () => {
    expect(isAccountKey('accounts/', 'accounts/alice.json')).toBe(true);
    expect(isAccountKey('accounts/', 'accounts/alice.json.rescue.json')).toBe(false);
    expect(isAccountKey('accounts/', 'accounts/old/alice.json')).toBe(false);
    expect(isAccountKey('accounts/', 'accounts/notes.txt')).toBe(false);
    expect(isAccountKey('accounts/', 'accounts/.json')).toBe(false);
  });
});
