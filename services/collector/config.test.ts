import { describe, expect, it } from 'vitest';
import type { ConfigError } from '../lib/config.ts';
import { exposureProblems, readCollectorConfig } from './config.ts';
import { WriteKeys } from './http/write-keys.ts';

describe('collector config', () => {
  it('needs WRITE_KEYS or WRITE_KEYS_FILE: there is no default secret', () => {
    expect(() => readCollectorConfig({})).toThrow(/WRITE_KEYS: required unless WRITE_KEYS_FILE is set/);
    expect(readCollectorConfig({ WRITE_KEYS_FILE: '/etc/keys' }).WRITE_KEYS.size).toBe(0);
  });

  it('parses keys with their scope and lists every bad value, one line each', () => {
    expect(readCollectorConfig({ WRITE_KEYS: 'k1:web:track, k2:ios, k3:srv:all' }).WRITE_KEYS).toEqual(
      new Map([
        ['k1', { source: 'web', scope: 'track' }],
        ['k2', { source: 'ios', scope: 'all' }],
        ['k3', { source: 'srv', scope: 'all' }],
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

  it('reads the PostHog feature sources in order and names a bad one', () => {
    expect(readCollectorConfig({ WRITE_KEYS: 'k:s' }).POSTHOG_FEATURE_FROM).toEqual(['property', 'map']);
    expect(
      readCollectorConfig({ WRITE_KEYS: 'k:s', POSTHOG_FEATURE_FROM: 'path, event' }).POSTHOG_FEATURE_FROM,
    ).toEqual(['path', 'event']);
    expect(() => readCollectorConfig({ WRITE_KEYS: 'k:s', POSTHOG_FEATURE_FROM: 'property,url' })).toThrow(
      expect.objectContaining({
        problems: [
          expect.stringMatching(/^POSTHOG_FEATURE_FROM: .*url is not one of property, map, path, event/),
        ],
      }),
    );
  });

  it('never repeats a write key in its problem (the message goes to stderr)', () => {
    try {
      readCollectorConfig({ WRITE_KEYS: 'sk_live_valid123:web,broken-entry' });
      expect.unreachable();
    } catch (err) {
      const text = (err as ConfigError).problems.join('\n');
      expect(text).toContain('WRITE_KEYS: entry 2');
      expect(text).not.toContain('sk_live_valid123');
      expect(text).not.toContain('broken-entry');
    }
  });

  it('refuses the documented dev key on an address other machines reach, unless INSECURE_DEV says it is meant', () => {
    const problems = (env: Record<string, string>) => {
      const c = readCollectorConfig(env);
      return exposureProblems(c, new WriteKeys({ fromEnv: c.WRITE_KEYS }));
    };
    expect(problems({ HOST: '0.0.0.0', WRITE_KEYS: 'local-dev-key:local' })[0]).toMatch(
      /^WRITE_KEYS: the documented dev key local-dev-key is accepted on HOST=0.0.0.0/,
    );
    expect(problems({ HOST: '0.0.0.0', WRITE_KEYS: 'local-dev-key:local', INSECURE_DEV: 'true' })).toEqual(
      [],
    );
    expect(problems({ HOST: '127.0.0.1', WRITE_KEYS: 'local-dev-key:local' })).toEqual([]);
    expect(problems({ HOST: '0.0.0.0', WRITE_KEYS: 'sk_9f2e:web' })).toEqual([]);
  });
});
