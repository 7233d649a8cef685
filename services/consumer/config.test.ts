import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig } from '../lib/config.ts';
import { consumerSpec } from './config.ts';

describe('consumer config', () => {
  it('runs with no environment at all (local stack defaults)', () => {
    const c = readConfig(consumerSpec, {});
    expect(c).toMatchObject({
      KAFKA_TOPIC: 'user-activity.v1',
      KAFKA_DLQ_TOPIC: 'user-activity.v1.dlq',
      KAFKA_GROUP_ID: 'activity-consumer',
      CLICKHOUSE_DATABASE: 'analytics',
      CONSUMER_HTTP_PORT: 9464,
      MIGRATE_ON_START: false,
      LAG_REFRESH_INTERVAL_MS: 5_000,
      STUCK_PARTITION_MS: 120_000,
    });
  });

  it('refuses a cluster name that is not a plain name (migration statements are built with it)', () => {
    expect(() => readConfig(consumerSpec, { CLICKHOUSE_CLUSTER: 'a b; DROP' })).toThrow(
      /CLICKHOUSE_CLUSTER: not a plain name/,
    );
  });

  it('refuses a stuck-partition threshold or lag refresh period too short to mean anything', () => {
    expect(() =>
      readConfig(consumerSpec, { STUCK_PARTITION_MS: '10', LAG_REFRESH_INTERVAL_MS: '0' }),
    ).toThrow(/LAG_REFRESH_INTERVAL_MS: out of range[\s\S]*STUCK_PARTITION_MS: out of range/);
  });

  it('lists every bad value at once', () => {
    let err: unknown;
    try {
      readConfig(consumerSpec, { BATCH_MAX_ROWS: '0', FLUSH_INTERVAL_MS: 'soon', CLICKHOUSE_URL: 'tcp://x' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.split(':')[0])).toEqual([
      'CLICKHOUSE_URL',
      'BATCH_MAX_ROWS',
      'FLUSH_INTERVAL_MS',
    ]);
  });
});
