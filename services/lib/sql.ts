/**
 * SQL text helpers shared by every service that sends SQL to ClickHouse. 18.16 has no query
 * parameters, so values travel as escaped literals.
 */

/** A string literal for ClickHouse: backslash escapes for the quote, backslash and control bytes. */
export function quoteString(s: string): string {
  const escaped = s.replace(/[\\'\n\r\t\0\b\f]/g, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      case '\0':
        return '\\0';
      case '\b':
        return '\\b';
      case '\f':
        return '\\f';
      default:
        return `\\${c}`;
    }
  });
  return `'${escaped}'`;
}

/** An identifier for ClickHouse (a column such as `details.detail_type`): backquoted, escaped. */
export function quoteIdentifier(name: string): string {
  return `\`${name.replace(/[\\`]/g, (c) => `\\${c}`)}\``;
}
