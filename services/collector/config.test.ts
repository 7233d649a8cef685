import { describe, expect, it } from 'vitest';
import { ConfigError } from '../lib/errors.ts';
import { readCollectorConfig } from './config.ts';

describe('collector config', () => {
  it('needs WRITE_KEYS: there is no default secret', () => {
    expect(() => readCollectorConfig({})).toThrow(ConfigError);
  });

  it('parses keys and lists every bad value, one line each', () => {
    expect(readCollectorConfig({ WRITE_KEYS: 'k1:web, k2:ios' }).WRITE_KEYS).toEqual(
      new Map([
        ['k1', 'web'],
        ['k2', 'ios'],
      ]),
    );
    try {
      readCollectorConfig({ WRITE_KEYS: 'nokey', PORT: 'x', FEATURE_MAP: 'a', ANONYMIZE_IP: 'maybe' });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems.map((p) => p.split(':')[0])).toEqual([
        'PORT',
        'WRITE_KEYS',
        'ANONYMIZE_IP',
        'FEATURE_MAP',
      ]);
    }
  });
});
