import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { InsertRows } from '../lib/clickhouse.ts';
import { backoffMs, Sink, type SinkItem } from './sink.ts';

const logger = pino({ level: 'silent' });
const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
/** ClickHouse 18.16's error text: the code is read from the structured prefix. */
const server = (code: number): Error => new Error(`Code: ${code}, e.displayText() = DB::Exception: x`);

function fakeClient(fail: (rows: readonly Record<string, unknown>[], call: number) => Error | undefined) {
  const written: Record<string, unknown>[][] = [];
  let calls = 0;
  const insert: InsertRows = async (_table, _columns, values) => {
    const err = fail(values, calls++);
    if (err) throw err;
    written.push([...values]);
  };
  return { insert, written, calls: () => calls };
}

function sink(
  insert: InsertRows,
  signal = new AbortController().signal,
  checkSchema: (table: string) => Promise<readonly string[]> = async () => [],
) {
  const events: string[] = [];
  const s = new Sink({
    insert,
    columnsOf: () => ['id'],
    checkSchema,
    logger,
    retry: { initialMs: 1, maxMs: 4 },
    signal,
    random: () => 0.5,
    events: {
      onInsert: (t, rows) => events.push(`insert ${t} ${rows}`),
      onError: (t, code) => events.push(`error ${t} ${code}`),
      onRetrying: (t, attempt) => events.push(`retry ${t} ${attempt}`),
      onRecovered: (t, attempts) => events.push(`recovered ${t} ${attempts}`),
    },
  });
  return { s, events };
}

const items = (n: number): SinkItem<number>[] =>
  Array.from({ length: n }, (_, i) => ({ row: { i }, source: i }));

describe('backoffMs', () => {
  it('grows exponentially, is capped, and keeps half of the delay random', () => {
    const p = { initialMs: 100, maxMs: 1_000 };
    expect(backoffMs(0, p, () => 0)).toBe(50);
    expect(backoffMs(0, p, () => 1)).toBe(100);
    expect(backoffMs(3, p, () => 1)).toBe(800);
    expect(backoffMs(10, p, () => 1)).toBe(1_000);
    expect(backoffMs(10, p, () => 0)).toBe(500);
    expect(backoffMs(1_000, p, () => 0.5)).toBe(750);
  });
});

describe('Sink', () => {
  it('retries an unavailable ClickHouse until it answers, reporting retry and recovery', async () => {
    const f = fakeClient((_rows, call) => (call < 3 ? refused() : undefined));
    const { s, events } = sink(f.insert);
    expect(await s.write('t', items(5))).toEqual([]);
    expect(f.written).toHaveLength(1);
    expect(events).toEqual([
      'error t unavailable',
      'retry t 0',
      'error t unavailable',
      'retry t 1',
      'error t unavailable',
      'retry t 2',
      'insert t 5',
      'recovered t 4',
    ]);
  });

  it('retries retriable server codes (TOO_MANY_PARTS) the same way', async () => {
    const f = fakeClient((_rows, call) => (call === 0 ? server(252) : undefined));
    const { s, events } = sink(f.insert);
    expect(await s.write('t', items(2))).toEqual([]);
    expect(events.slice(0, 2)).toEqual(['error t 252', 'retry t 0']);
  });

  it('isolates the rows ClickHouse refuses for their data and writes all the others', async () => {
    const bad = new Set([3, 6]);
    const f = fakeClient((rows) => (rows.some((r) => bad.has(r.i as number)) ? server(27) : undefined));
    const { s } = sink(f.insert);
    const rejected = await s.write('t', items(8));
    expect(rejected.map((r) => r.source)).toEqual([3, 6]);
    expect(rejected[0]?.code).toBe(27);
    expect(
      f.written
        .flat()
        .map((r) => r.i)
        .sort(),
    ).toEqual([0, 1, 2, 4, 5, 7]);
  });

  // Regression: when every row of a multi-row batch was refused, the sink assumed a deployment
  // problem and retried forever, wedging the partition (one request's events all carrying the same
  // out-of-range value did it).
  it('dead-letters every row of a batch refused alike when the schema matches', async () => {
    const f = fakeClient(() => server(72));
    let checks = 0;
    const { s, events } = sink(f.insert, undefined, async () => {
      checks++;
      return [];
    });
    const rejected = await s.write('t', items(4));
    expect(rejected.map((r) => [r.source, r.code])).toEqual([
      [0, 72],
      [1, 72],
      [2, 72],
      [3, 72],
    ]);
    expect(rejected[0]?.message).toMatch(/^Code: 72/);
    expect(events.some((e) => e.startsWith('retry'))).toBe(false);
    // Once per write, not once per split.
    expect(checks).toBe(1);
  });

  it('retries rows refused for their data while the table does not match the row builder', async () => {
    let migrated = false;
    const f = fakeClient(() => (migrated ? undefined : server(117)));
    let checks = 0;
    const { s, events } = sink(f.insert, undefined, async () => {
      checks++;
      if (checks === 3) migrated = true;
      return migrated ? [] : ['t.x is missing (expected String)'];
    });
    expect(await s.write('t', items(4))).toEqual([]);
    expect(events).toContain('retry t 0');
    expect(f.written.flat()).toHaveLength(4);
  });

  it('does not blame rows while the schema cannot be checked (ClickHouse gone meanwhile)', async () => {
    let call = 0;
    const f = fakeClient(() => (call++ < 2 ? server(27) : undefined));
    const { s } = sink(f.insert, undefined, async () => {
      throw refused();
    });
    expect(await s.write('t', items(2))).toEqual([]);
    expect(f.written.flat()).toHaveLength(2);
  });

  it('retries a non-data, non-retriable code (unknown table) instead of dropping rows', async () => {
    const f = fakeClient((_rows, call) => (call < 2 ? server(60) : undefined));
    const { s } = sink(f.insert);
    expect(await s.write('t', items(3))).toEqual([]);
    expect(f.calls()).toBe(3);
  });

  it('stops retrying when aborted (shutdown) and rejects', async () => {
    const ac = new AbortController();
    const f = fakeClient(() => refused());
    const { s } = sink(f.insert, ac.signal);
    const p = s.write('t', items(1));
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toMatchObject({ code: 'CONSUMER_SINK_ABORTED' });
  });
});
