/**
 * ClickHouse's TabSeparated text format, both ways: rows encoded for inserts, fields read back from
 * query results. Pure.
 *
 * Why inserts use it rather than JSONEachRow: JSONEachRow repeats every column name in every row
 * (an ingest row is ~1.3 KB of JSON, most of it keys), which the consumer pays to build and send
 * and ClickHouse pays to parse and match; TabSeparated with an explicit column list sends values
 * only and is checked just as strictly (a column the table lacks is refused, code 16).
 *
 * Escaping follows ClickHouse's own output: backslash, tab, line feed, carriage return (18.16
 * refuses a raw \r before a line end), NUL, backspace and form feed as backslash sequences. Arrays
 * are ClickHouse array literals of quoted elements (sql.ts quoteString), not escaped again. NULL is
 * \N; numbers are written as JavaScript prints them (the contract keeps them finite and within
 * 2^53, where that is plain decimal).
 */
import { quoteString } from './sql.ts';

const NEEDS_ESCAPE = /[\\\t\n\r\0\b\f]/;
const ESCAPABLE = /[\\\t\n\r\0\b\f]/g;
const ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\0': '\\0',
  '\b': '\\b',
  '\f': '\\f',
};

const escapeField = (s: string): string =>
  NEEDS_ESCAPE.test(s) ? s.replace(ESCAPABLE, (c) => ESCAPES[c] as string) : s;

function field(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'string') return escapeField(v);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (Array.isArray(v)) {
    // ClickHouse parses an array straight from the row (its elements as quoted literals), without
    // unescaping the field first: quoteString's escapes leave no raw tab or line feed in it.
    return `[${v.map((x) => (typeof x === 'string' ? quoteString(x) : field(x))).join(',')}]`;
  }
  throw new TypeError(`no TabSeparated form for a value of type ${typeof v}`);
}

/** The rows as TabSeparated text, fields in `columns` order, one line each. */
export function encodeTabSeparated(
  rows: readonly Readonly<Record<string, unknown>>[],
  columns: readonly string[],
): string {
  let out = '';
  for (const row of rows) {
    let line = '';
    for (let i = 0; i < columns.length; i += 1) {
      if (i > 0) line += '\t';
      line += field(row[columns[i] as string]);
    }
    out += `${line}\n`;
  }
  return out;
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
