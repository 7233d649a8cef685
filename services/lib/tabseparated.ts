/**
 * ClickHouse's TabSeparated text format, both ways: rows encoded for inserts, fields read back from
 * query results. Pure.
 *
 * Why inserts use it rather than JSONEachRow: JSONEachRow repeats every column name in every row
 * (an ingest row was ~1.5 KB of JSON, most of it keys: services/consumer/README.md), which the consumer pays to build and send
 * and ClickHouse pays to parse and match; TabSeparated with an explicit column list sends values
 * only and is checked just as strictly (a column the table lacks is refused, code 16).
 *
 * Escaping follows ClickHouse's own output: backslash, tab, line feed, carriage return (18.16
 * refuses a raw \r before a line end), NUL, backspace and form feed as backslash sequences. Arrays
 * are ClickHouse array literals of quoted elements (sql.ts quoteString), not escaped again. NULL is
 * \N; numbers are written as JavaScript prints them (the contract keeps them finite and within
 * 2^53, where that is plain decimal).
 */
import { BACKSLASH_ESCAPES, quoteString } from './sql.ts';

const NEEDS_ESCAPE = /[\\\t\n\r\0\b\f]/;
const ESCAPABLE = /[\\\t\n\r\0\b\f]/g;

const escapeField = (s: string): string =>
  NEEDS_ESCAPE.test(s) ? s.replace(ESCAPABLE, (c) => BACKSLASH_ESCAPES[c] as string) : s;

function field(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'string') return escapeField(v);
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (Array.isArray(v)) {
    // ClickHouse parses an array straight from the row (its elements as quoted literals), without
    // unescaping the field first: quoteString's escapes leave no raw tab or line feed in it.
    return `[${v.map((x) => (typeof x === 'string' ? quoteString(x) : field(x))).join(',')}]`;
  }
  throw new TypeError(`no TabSeparated form for a value of type ${typeof v}`);
}

/**
 * The rows as TabSeparated bytes (UTF-8), fields in `columns` order, one line each. Each line is
 * written into one growing buffer as it is made: appending 10k lines to one string and converting
 * that at the end was a top item of the consumer's profile (flattening a rope of ~450k pieces).
 */
export function encodeTabSeparated(
  rows: readonly Readonly<Record<string, unknown>>[],
  columns: readonly string[],
): Buffer {
  let buf = Buffer.allocUnsafe(Math.max(1_024, rows.length * 512));
  let used = 0;
  for (const row of rows) {
    let line = '';
    for (let i = 0; i < columns.length; i += 1) {
      if (i > 0) line += '\t';
      line += field(row[columns[i] as string]);
    }
    line += '\n';
    // A UTF-16 code unit is at most 3 UTF-8 bytes.
    if (used + line.length * 3 > buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, used + line.length * 3));
      buf.copy(bigger, 0, 0, used);
      buf = bigger;
    }
    used += buf.write(line, used);
  }
  return buf.subarray(0, used);
}

const UNESCAPES: Readonly<Record<string, string>> = {
  b: '\b',
  f: '\f',
  r: '\r',
  n: '\n',
  t: '\t',
  '0': '\0',
};

/** A TabSeparated field as ClickHouse escapes it (backslash sequences), back to its text. */
export function unescapeTabSeparated(field: string): string {
  if (!field.includes('\\')) return field;
  return field.replace(/\\(.)/g, (_, c: string) => UNESCAPES[c] ?? c);
}
