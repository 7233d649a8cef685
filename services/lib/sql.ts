/**
 * SQL text helpers shared by every service that sends SQL to ClickHouse. 18.16 has no query
 * parameters, so values travel as escaped literals.
 */

/**
 * Backslash escapes ClickHouse reads in quoted literals and in TabSeparated fields alike: the
 * backslash itself and the control characters that would end a field or a row, or that 18.16 reads
 * badly raw (a \r before a line end).
 */
export const BACKSLASH_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\0': '\\0',
  '\b': '\\b',
  '\f': '\\f',
};

/** A string literal for ClickHouse: backslash escapes for the quote, backslash and control bytes. */
export function quoteString(s: string): string {
  return `'${s.replace(/[\\'\n\r\t\0\b\f]/g, (c) => BACKSLASH_ESCAPES[c] ?? `\\${c}`)}'`;
}

/** A name (database, cluster, table) that may stand in SQL unquoted: what DDL built from config accepts. */
export const IDENTIFIER_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An identifier for ClickHouse (a column such as `details.detail_type`): backquoted, escaped. */
export function quoteIdentifier(name: string): string {
  return `\`${name.replace(/[\\`]/g, (c) => `\\${c}`)}\``;
}
