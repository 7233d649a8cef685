import { describe, expect, it } from 'vitest';
import { redactedClickHouseMessage } from './clickhouse.ts';

describe('redactedClickHouseMessage', () => {
  it('cuts the row text 18.16 and current versions quote, keeping code, reason and row number', () => {
    const old =
      'Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected \\t before: NaN\\t\\\\N\\tuser-42\\t203.0.113.9\\n: (at row 1)\\n';
    expect(redactedClickHouseMessage(old)).toBe(
      'Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected \\t [row content redacted] (at row 1)',
    );
    const current =
      "Code: 27. DB::Exception: Cannot parse input: expected '\\t' before: 'x\\tuser-42': (at row 3)\n: \nRow 3:\nColumn 0,   name: event_id, type: String, parsed text: \"user-42\"\n";
    const r = redactedClickHouseMessage(current);
    expect(r).toMatch(
      /^Code: 27\. DB::Exception: Cannot parse input: expected '\\t' \[row content redacted\] \(at row 3\)$/,
    );
    expect(r).not.toContain('user-42');
  });

  it('leaves messages without row text alone, bounded', () => {
    expect(redactedClickHouseMessage('Code: 241, Memory limit exceeded')).toBe(
      'Code: 241, Memory limit exceeded',
    );
    expect(redactedClickHouseMessage('x'.repeat(1_000), 300)).toHaveLength(303);
  });
});
