import { describe, expect, it } from 'vitest';
import { apiRootFrom, KITE_API_ROOT, parseConfig, serializeConfig } from '../../lib/engine/broker-config.ts';
import { ConfigError } from '../../lib/shared/errors.ts';

const seed = {
  type: 'kite',
  api_key: 'kitekey1',
  api_secret: 'accesstoken0000000000',
  refresh_token: 'refreshtoken000000000',
  base_url: 'https://kite.zerodha.com',
  rate_limit: { requests_per_second: 10, burst_size: 20 },
};

function configError(text: string): ConfigError {
  try {
    parseConfig(text, 'broker-config.json');
  } catch (e: unknown) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('accepts the trading system seed format unchanged', () => {
    const config = parseConfig(JSON.stringify(seed), 'broker-config.json');
    expect(config).toEqual(seed);
  });

  it('preserves unknown fields, nested ones included, through a write', () => {
    const text = JSON.stringify({
      ...seed,
      strategy: { id: 7, tags: ['a'] },
      rate_limit: { ...seed.rate_limit, x: 1 },
    });
    const roundTrip = JSON.parse(serializeConfig(parseConfig(text, 'f')));
    expect(roundTrip.strategy).toEqual({ id: 7, tags: ['a'] });
    expect(roundTrip.rate_limit.x).toBe(1);
  });

  it('names a missing field', () => {
    const { api_key: _, ...rest } = seed;
    const error = configError(JSON.stringify(rest));
    expect(error.field).toBe('api_key');
    expect(error.message).toMatch(/missing required field "api_key"/);
  });

  it('names a field of the wrong type, and says it is of the wrong type rather than missing', () => {
    const error = configError(JSON.stringify({ ...seed, rate_limit: { requests_per_second: 'ten' } }));
    expect(error.field).toBe('rate_limit.requests_per_second');
    expect(error.message).toBe(
      'broker-config.json: field "rate_limit.requests_per_second" must be of type number',
    );
    expect(configError(JSON.stringify({ ...seed, api_secret: 7 })).message).toBe(
      'broker-config.json: field "api_secret" must be a string',
    );
  });

  it('rejects a config of another broker type', () => {
    expect(configError(JSON.stringify({ ...seed, type: 'upstox' })).field).toBe('type');
  });

  it('rejects malformed JSON without quoting its content', () => {
    const error = configError('{"type":"kite","api_secret":"s3cr3tTOKENvalue" oops}');
    expect(error.message).toMatch(/not valid JSON/);
    expect(error.message).not.toContain('s3cr3tTOKENvalue');
  });

  it('rejects a document that is not an object', () => {
    expect(configError('[1,2]').message).toMatch(/JSON object/);
    expect(configError('null').message).toMatch(/JSON object/);
  });

  it('rejects an oversized document', () => {
    const error = configError(JSON.stringify({ ...seed, padding: 'x'.repeat(70_000) }));
    expect(error.message).toMatch(/larger than 65536 bytes/);
  });

  it('rejects a non-https base_url', () => {
    expect(configError(JSON.stringify({ ...seed, base_url: 'http://api.kite.trade' })).field).toBe(
      'base_url',
    );
    expect(configError(JSON.stringify({ ...seed, base_url: 'ftp://127.0.0.1' })).field).toBe('base_url');
    expect(configError(JSON.stringify({ ...seed, base_url: 'not a url' })).field).toBe('base_url');
  });
});

describe('apiRootFrom', () => {
  it('maps the login site of the seed example to the API root', () => {
    expect(apiRootFrom('https://kite.zerodha.com')).toEqual({ url: KITE_API_ROOT, substituted: true });
  });

  it('defaults to the API root when base_url is absent', () => {
    expect(apiRootFrom(undefined)).toEqual({ url: KITE_API_ROOT, substituted: false });
  });

  it('accepts http to a loopback address for the sandbox', () => {
    expect(apiRootFrom('http://127.0.0.1:8123/').url).toBe('http://127.0.0.1:8123');
    expect(apiRootFrom('http://localhost:8123').url).toBe('http://localhost:8123');
  });

  it('rejects http to anything else, and URLs with credentials', () => {
    expect(() => apiRootFrom('http://10.0.0.5:80')).toThrow(ConfigError);
    expect(() => apiRootFrom('https://user:pw@api.kite.trade')).toThrow(ConfigError);
  });
});
