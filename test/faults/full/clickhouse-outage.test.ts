/**
 * ClickHouse stopped for 60 s, and ClickHouse hung (SIGSTOP 30 s: sockets open, no answers, so
 * inserts time out instead of failing fast, and one may complete after the consumer gave up on
 * it), while SDK-like senders post to the collector process: the collector keeps acknowledging
 * (Kafka is up), the consumer (the same process throughout) waits and retries, and afterwards every
 * acknowledged event is counted once with DAU/WAU/MAU equal to the truth. A private Kafka +
 * ClickHouse, so the database is ours to stop.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultPipeline, runUnderLoad, startFaultPipeline } from '../../harness/fault-run.ts';
import { type AckedEvent, expectAckedCounted } from '../../harness/invariant.ts';

const DOWN_MS = 60_000;
const HANG_MS = 30_000;

describe('ClickHouse down and hung under load', () => {
  let fp: FaultPipeline;
  // Both scenarios write to the same tables: the second checks the first one's events too.
  const acked: AckedEvent[] = [];

  beforeAll(async () => {
    fp = await startFaultPipeline('clickhouse-outage', {
      consumerEnv: { CLICKHOUSE_RETRY_MAX_MS: '2000', CLICKHOUSE_REQUEST_TIMEOUT_MS: '5000' },
    });
  });

  afterAll(async () => {
    await fp?.close();
  });

  it('down 60 s: no acknowledged event lost or counted twice', async () => {
    let sawPaused = false;
    let errors = 0;
    const run = await runUnderLoad({
      setup: fp.setup,
      collectors: fp.collectors,
      seed: 10_006,
      tag: 'chdown',
      fault: async () => {
        await fp.stack.stopClickhouse();
        await sleep(DOWN_MS);
        sawPaused = (await fp.consumer.metric('consumer_fetch_paused')) === 1;
        errors = await fp.consumer.metric('consumer_clickhouse_insert_errors_total');
        const t = Date.now();
        await fp.stack.startClickhouse();
        return `ClickHouse down ${DOWN_MS / 1000} s (consumer paused at the end: ${sawPaused}, insert errors ${errors}), restart took ${((Date.now() - t) / 1000).toFixed(1)} s`;
      },
    });
    process.stderr.write(`[clickhouse-down] ${run.summary}\n`);
    // A loop, not push(...): hundreds of thousands of arguments overflow the stack.
    for (const a of run.acked) acked.push(a);
    expect(run.stats.rejected).toBe(0);
    expect(errors).toBeGreaterThan(0);
    expectAckedCounted(run.report);
    expect(fp.consumer.child.exitCode).toBeNull();
  });

  it('hung 30 s (SIGSTOP): no acknowledged event lost or counted twice', async () => {
    const errorsBefore = await fp.consumer.metric('consumer_clickhouse_insert_errors_total');
    let errors = 0;
    let sinceInsert = 0;
    const run = await runUnderLoad({
      setup: fp.setup,
      collectors: fp.collectors,
      seed: 10_007,
      tag: 'chhang',
      earlier: acked,
      fault: async () => {
        const logsBefore = fp.consumer.logs.length;
        await fp.stack.pause('clickhouse');
        await sleep(HANG_MS);
        errors = (await fp.consumer.metric('consumer_clickhouse_insert_errors_total')) - errorsBefore;
        sinceInsert = await fp.consumer.metric('consumer_clickhouse_seconds_since_last_insert');
        await fp.stack.resume('clickhouse');
        // What the consumer said while ClickHouse hung (warn and above), to tell a timeout from a wedge.
        const said = [
          ...new Set(
            fp.consumer.logs
              .slice(logsBefore)
              .filter((l) => /"level":(40|50|60)/.test(l))
              .map((l) => String((JSON.parse(l) as { msg?: unknown }).msg)),
          ),
        ];
        return (
          `ClickHouse stopped (SIGSTOP) ${HANG_MS / 1000} s (insert errors meanwhile ${errors}, ` +
          `seconds since last insert at the end ${sinceInsert}, consumer warnings ${JSON.stringify(said)})`
        );
      },
    });
    process.stderr.write(`[clickhouse-hang] ${run.summary}\n`);
    // A loop, not push(...): hundreds of thousands of arguments overflow the stack.
    for (const a of run.acked) acked.push(a);
    expect(run.stats.rejected).toBe(0);
    // The hang is visible: what hangs first is the batch's profile look-up (measured: no insert
    // error counted in 30 s, "profile look-up failed; retrying" logged), so the signal that
    // covers both is the time since the last insert, not the insert error counter.
    expect(sinceInsert).toBeGreaterThan(HANG_MS / 1000 - 10);
    expectAckedCounted(run.report);
    expect(fp.consumer.child.exitCode).toBeNull();
  });
});
