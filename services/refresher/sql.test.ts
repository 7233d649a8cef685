import { describe, expect, it } from 'vitest';
import { newUsersQuery, windowsQuery } from './sql.ts';

/**
 * Every run of whitespace as one space: these assertions pin the bounds and the fan-out the queries
 * use, not their layout. Their results are checked against exact truth on the real ClickHouse in
 * test/integration/finished-active-users.test.ts.
 */
const flat = (sql: string): string => sql.replace(/\s+/g, ' ');

describe('refresher SQL', () => {
  it('scans the run plus the 29 days before it in the zone, deduplicated by event, all slices at once', () => {
    const sql = flat(windowsQuery('Asia/Kolkata', '2025-03-01', '2025-03-07'));
    expect(sql).toContain("activity_timestamp >= toDateTime('2025-01-31 00:00:00', 'Asia/Kolkata')");
    expect(sql).toContain("activity_timestamp < toDateTime('2025-03-08 00:00:00', 'Asia/Kolkata')");
    // date_key (UTC) bounds a day wider than the local range: the primary key prunes by it.
    expect(sql).toContain('date_key >= 20250130 AND date_key <= 20250308');
    expect(sql).toContain('LIMIT 1 BY event_id');
    expect(sql).toContain(
      "ARRAY JOIN arrayConcat([0], [1, 2, 3, 4]) AS kind, ['', feature, device_type, country, segment] AS value",
    );
    expect(sql).toContain('ARRAY JOIN range(30) AS k');
    expect(sql).toContain("WHERE day >= toDate('2025-03-01') AND day <= toDate('2025-03-07')");
    expect(sql).toContain('is_test_account = 0 AND is_bot = 0');
  });

  it('reads first-seen minimums only for users active in the run', () => {
    const sql = flat(newUsersQuery('UTC', '2025-03-01', '2025-03-07'));
    expect(sql).toContain(
      'user_key GLOBAL IN (SELECT user_key FROM fact_user_activity WHERE date_key >= 20250228 AND date_key <= 20250308',
    );
    expect(sql).toContain(
      "WHERE first >= toDateTime('2025-03-01 00:00:00', 'UTC') AND first < toDateTime('2025-03-08 00:00:00', 'UTC')",
    );
  });

  it('quotes the zone', () => {
    expect(windowsQuery("UTC'x", '2025-03-01', '2025-03-01')).toContain("'UTC\\'x'");
  });
});
