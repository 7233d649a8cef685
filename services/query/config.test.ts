import { describe, expect, it } from 'vitest';
import { ConfigError } from '../lib/config.ts';
import { readQueryConfig } from './config.ts';

describe('query config', () => {
  it('has working defaults for the local stack: read-only user, open API', () => {
    const c = readQueryConfig({});
    expect(c.PORT).toBe(8081);
    expect(c.CLICKHOUSE_USER).toBe('analytics_reader');
    expect(c.CLICKHOUSE_DATABASE).toBe('analytics');
    expect(c.QUERY_TOKENS).toEqual([]);
    expect(c.CLICKHOUSE_CLUSTER).toBe('');
  });

  it('takes a ClickHouse cluster by a plain name only (statements are built with it)', () => {
    expect(readQueryConfig({ CLICKHOUSE_CLUSTER: 'pipeline' }).CLICKHOUSE_CLUSTER).toBe('pipeline');
    expect(() => readQueryConfig({ CLICKHOUSE_CLUSTER: 'a b; DROP' })).toThrow(
      /CLICKHOUSE_CLUSTER: not a plain name/,
    );
  });

  it('reads tokens and reports every bad value at once', () => {
    expect(readQueryConfig({ QUERY_TOKENS: 'a, b' }).QUERY_TOKENS).toEqual(['a', 'b']);
    try {
      readQueryConfig({ PORT: '0', CLICKHOUSE_URL: 'ftp://x', QUERY_MAX_RANGE_DAYS: 'many' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(3);
    }
  });

  it('refuses open read access on an address other machines reach, unless INSECURE_DEV says it is meant', () => {
    expect(() => readQueryConfig({ HOST: '0.0.0.0' })).toThrow(/QUERY_TOKENS: required on HOST=0.0.0.0/);
    expect(readQueryConfig({ HOST: '0.0.0.0', QUERY_TOKENS: 't' }).QUERY_TOKENS).toEqual(['t']);
    expect(readQueryConfig({ HOST: '0.0.0.0', INSECURE_DEV: 'true' }).INSECURE_DEV).toBe(true);
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.1.2.3']) {
      expect(readQueryConfig({ HOST: host }).HOST).toBe(host);
    }
  });
});
