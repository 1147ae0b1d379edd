import { describe, expect, it } from 'vitest';
import type { BrokerConfig } from '../../lib/engine/broker-config.ts';
import { formatStatus, tokenStatus } from '../../lib/engine/status.ts';
import { withVerdict } from '../../lib/engine/verdict.ts';

const ist = (s: string) => new Date(`${s}+05:30`);

const config = (fields: Partial<BrokerConfig>): BrokerConfig => ({
  type: 'kite',
  api_key: 'key',
  api_secret: 'tok',
  access_token_expires_at: '2025-11-08T06:00:00+05:30',
  ...fields,
});

describe('tokenStatus', () => {
  it("shows Kite's last word on the stored token, and none once the token has changed", () => {
    const now = ist('2025-11-07T10:30:00');
    const asked = withVerdict(config({}), false, ist('2025-11-07T08:01:00'));

    expect(formatStatus(tokenStatus(asked, 'x', now))).toContain(
      'Kite says:     REJECTED at 2025-11-07 08:01:00 IST: log in or renew',
    );
    expect(
      formatStatus(tokenStatus(withVerdict(asked, true, ist('2025-11-07T09:01:00')), 'x', now)),
    ).toContain('Kite says:     accepted at 2025-11-07 09:01:00 IST');
    expect(formatStatus(tokenStatus({ ...asked, api_secret: 'new' }, 'x', now))).toContain(
      'Kite says:     not asked about this token yet (the previous one was asked at 2025-11-07 08:01:00 IST)',
    );
    expect(formatStatus(tokenStatus(config({}), 'x', now)).join('\n')).toMatch(/Kite says: +not asked yet/);
  });

  it('reports the age of the token from refreshed_at', () => {
    const status = tokenStatus(
      config({ refreshed_at: '2025-11-07T09:00:00+05:30' }),
      'file:///tmp/broker-config.json',
      ist('2025-11-07T10:30:00'),
    );
    expect(status).toMatchObject({
      refreshedAt: '2025-11-07 09:00:00 IST',
      ageMinutes: 90,
      refreshDue: false,
    });
  });

  it('reads a refreshed_at with milliseconds', () => {
    const status = tokenStatus(
      config({ refreshed_at: '2025-11-07T09:00:00.123+05:30' }),
      'file:///tmp/broker-config.json',
      ist('2025-11-07T10:30:00'),
    );
    expect(status).toMatchObject({ refreshedAt: '2025-11-07 09:00:00 IST', ageMinutes: 89 });
  });

  it('reports an unreadable refreshed_at as unknown, as the refresh engine reads it', () => {
    const status = tokenStatus(
      config({ refreshed_at: 'not a time' }),
      'file:///tmp/broker-config.json',
      ist('2025-11-07T10:30:00'),
    );
    expect(status).toMatchObject({ refreshedAt: undefined, ageMinutes: undefined });
  });
});
