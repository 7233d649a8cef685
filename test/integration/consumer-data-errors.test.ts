/**
 * Regression (issue 10, reproduction 1): when ClickHouse refused every row of a batch for its data
 * (one request's events all with sent_at before 1970: code 72 for the UInt64 column), the sink took
 * it for a deployment problem and retried forever with fetching paused; nothing sent afterwards was
 * written. Rows refused for their content are values: dead-lettered with ClickHouse's code and
 * message, and the partition moves on. Checked on the sink against the real ClickHouse, and end to
 * end through the real consumer.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityRecord } from '../../services/consumer/ingest-row.ts';
import { toIngestActivityRow } from '../../services/consumer/ingest-row.ts';
import { INGEST_TABLES, ingestColumns, schemaProblems } from '../../services/consumer/schema.ts';
import { DATA_ERROR_CODES, Sink } from '../../services/consumer/sink.ts';
import { rowInserter } from '../../services/lib/clickhouse.ts';
import { groupLag, produce } from '../fixtures/kafka.ts';
import { activity, encoded } from '../fixtures/records.ts';
import {
  type ConsumerSetup,
  consumerSetup,
  refuseRows,
  scalar,
  waitFor,
} from '../harness/consumer-process.ts';

describe('consumer data errors', () => {
  let setup: ConsumerSetup;

  beforeAll(async () => {
    setup = await consumerSetup('consumer_data_errors', 1);
  });

  afterAll(async () => {
    await setup?.close();
  });

  const count = (ids: readonly unknown[]): Promise<number> =>
    scalar(
      setup.db.client,
      `SELECT uniqExact(event_id) FROM fact_user_activity WHERE event_id IN (${ids.map((i) => `'${i}'`).join(',')})`,
    );

  it('the sink dead-letters every row of a batch ClickHouse refuses for its data, without retrying', async () => {
    const retries: string[] = [];
    const sink = new Sink({
      insert: rowInserter(setup.db.client),
      columnsOf: ingestColumns,
      checkSchema: (table) => schemaProblems(setup.db.client, [table]),
      logger: pino({ level: 'silent' }),
      retry: { initialMs: 10, maxMs: 20 },
      signal: new AbortController().signal,
      events: {
        onInsert: () => {},
        onError: () => {},
        onRetrying: (table) => retries.push(table),
        onRecovered: () => {},
      },
    });
    const bad = Array.from({ length: 5 }, (_, i) => activity({ user_id: `sink-bad-${i}`, sent_at: -1_000 }));
    const rows = bad.map((r, i) => ({
      row: toIngestActivityRow(r as unknown as ActivityRecord) as unknown as Record<string, unknown>,
      source: i,
    }));
    const rejected = await sink.write(INGEST_TABLES.activity, rows);
    expect(rejected.map((r) => r.source)).toEqual([0, 1, 2, 3, 4]);
    for (const r of rejected) {
      // 27 for TabSeparated ("-1000" is not like UInt64); JSONEachRow said 72.
      expect(r.code).toBe(27);
      expect(DATA_ERROR_CODES.has(r.code)).toBe(true);
      expect(r.message).toMatch(/^Code: 27/);
      // The refused row's content (its user id) is not repeated in what is logged and dead-lettered.
      expect(r.message).toContain('[row content redacted]');
      expect(r.message).not.toContain('sink-bad-');
    }
    expect(retries).toEqual([]);
    expect(await count(bad.map((b) => b.event_id))).toBe(0);
  });

  it('a request whose events are all refused by ClickHouse is dead-lettered and later events land', async () => {
    await refuseRows(setup.db.client, 'refused-req-');
    const consumer = await setup.start({ FLUSH_INTERVAL_MS: '200' });
    // One request's events, all refused by ClickHouse for their content, so one batch of them is
    // refused row by row (the consumer itself now drops an out-of-range sent_at, see decode.ts).
    const poison = Array.from({ length: 20 }, (_, i) => activity({ user_id: `refused-req-${i}` }));
    await produce(
      setup.topics.kafka,
      setup.topic,
      poison.map((e) => encoded('user_activity', e)),
    );
    await waitFor(
      'the refused events dead-lettered',
      () => consumer.metric('consumer_dlq_messages_total'),
      (n) => n === poison.length,
    );
    const later = Array.from({ length: 10 }, (_, i) => activity({ user_id: `later-${i}` }));
    await produce(
      setup.topics.kafka,
      setup.topic,
      later.map((e) => encoded('user_activity', e)),
    );
    expect(
      await waitFor(
        'later events',
        () => count(later.map((e) => e.event_id)),
        (n) => n === later.length,
        30_000,
      ),
    ).toBe(later.length);
    await waitFor(
      'lag 0',
      () => groupLag(setup.admin, setup.groupId, setup.topic),
      (n) => n === 0,
      30_000,
    );
    expect(await count(poison.map((e) => e.event_id))).toBe(0);
    expect(await consumer.metric('consumer_fetch_paused')).toBe(0);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });
});
