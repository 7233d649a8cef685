import { describe, expect, it } from 'vitest';
import { bool, ConfigError, configOrExit, int, list, oneOf, readConfig, str, url } from './config.ts';

const spec = {
  PORT: int('HTTP port', 8080, 1, 65535),
  NAME: str('service name'),
  DEBUG: bool('debug mode', false),
  CLICKHOUSE_URL: url('ClickHouse HTTP URL', 'http://127.0.0.1:8123'),
  TOPICS: list('topics', ['a']),
  MODE: oneOf(['x', 'y'] as const, 'mode', 'x'),
};

describe('readConfig', () => {
  it('applies defaults and parses values', () => {
    const c = readConfig(spec, { NAME: 'n', PORT: '9000', TOPICS: 'a, b,,c', CLICKHOUSE_URL: 'http://h:1/' });
    expect(c).toEqual({
      PORT: 9000,
      NAME: 'n',
      DEBUG: false,
      CLICKHOUSE_URL: 'http://h:1',
      TOPICS: ['a', 'b', 'c'],
      MODE: 'x',
    });
  });

  it('lists every bad value at once', () => {
    let err: unknown;
    try {
      readConfig(spec, { PORT: '70000', DEBUG: 'maybe', CLICKHOUSE_URL: 'ftp://x', MODE: 'z' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.map((p) => p.split(':')[0]);
    expect(problems).toEqual(['PORT', 'NAME', 'DEBUG', 'CLICKHOUSE_URL', 'MODE']);
  });
});

describe('configOrExit', () => {
  it('writes the service name and every problem to stderr and exits 2', () => {
    const out: string[] = [];
    const codes: number[] = [];
    const exit = (code: number): never => {
      codes.push(code);
      throw new Error('exited');
    };
    expect(() =>
      configOrExit('consumer', () => readConfig(spec, { PORT: 'x' }), { write: (s) => out.push(s), exit }),
    ).toThrow('exited');
    expect(codes).toEqual([2]);
    expect(out.join('')).toMatch(
      /^consumer: invalid configuration:\n {2}PORT: not an integer.*\n {2}NAME: required/,
    );
  });

  it('returns the config, and lets an error that is not about config through', () => {
    expect(configOrExit('query', () => 1)).toBe(1);
    expect(() =>
      configOrExit('query', () => {
        throw new TypeError('bug');
      }),
    ).toThrow(TypeError);
  });
});
