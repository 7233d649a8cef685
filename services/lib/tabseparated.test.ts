import { describe, expect, it } from 'vitest';
import { encodeTabSeparated, unescapeTabSeparated } from './tabseparated.ts';

describe('encodeTabSeparated', () => {
  it('writes fields in column order, NULL as \\N, flags and numbers as text', () => {
    const rows = [
      { b: 2, a: 'x', c: null, d: true },
      { a: 'y', b: 1_700_000_000_000, c: 0.5, d: false },
    ];
    expect(encodeTabSeparated(rows, ['a', 'b', 'c', 'd']).toString()).toBe(
      'x\t2\t\\N\t1\ny\t1700000000000\t0.5\t0\n',
    );
  });

  it('escapes what would end a field or a row, and backslashes', () => {
    const text = 'a\tb\nc\rd\\e\0f\bg\fh';
    const line = encodeTabSeparated([{ s: text }], ['s']).toString();
    expect(line).toBe('a\\tb\\nc\\rd\\\\e\\0f\\bg\\fh\n');
    expect(line.slice(0, -1).split('\t')).toHaveLength(1);
    expect(unescapeTabSeparated(line.slice(0, -1))).toBe(text);
  });

  it('keeps quotes and Unicode as they are outside arrays', () => {
    expect(encodeTabSeparated([{ s: `it's "ok" ✓ 😀` }], ['s']).toString()).toBe(`it's "ok" ✓ 😀\n`);
  });

  it('writes arrays as ClickHouse array literals, quoted elements not escaped again', () => {
    const line = encodeTabSeparated(
      [{ t: ['a', "b'c", 'd\\e', 'f\tg'], n: [1, 2], e: [] }],
      ['t', 'n', 'e'],
    ).toString();
    expect(line).toBe("['a','b\\'c','d\\\\e','f\\tg']\t[1,2]\t[]\n");
  });

  it('grows its buffer for long and multi-byte rows', () => {
    const long = '✓'.repeat(5_000);
    const rows = Array.from({ length: 3 }, (_, i) => ({ i, s: long }));
    const bytes = encodeTabSeparated(rows, ['i', 's']);
    expect(bytes.toString()).toBe(rows.map((r) => `${r.i}\t${long}\n`).join(''));
    expect(bytes.length).toBe(3 * (2 + 3 * 5_000 + 1));
  });

  it('refuses a value it has no form for instead of writing something else', () => {
    expect(() => encodeTabSeparated([{ o: { nested: 1 } }], ['o'])).toThrow(TypeError);
  });
});

describe('unescapeTabSeparated', () => {
  it('reads ClickHouse escapes back', () => {
    expect(unescapeTabSeparated('plain_id')).toBe('plain_id');
    expect(unescapeTabSeparated("a\\tb\\nc\\\\d\\'e")).toBe("a\tb\nc\\d'e");
  });
});
