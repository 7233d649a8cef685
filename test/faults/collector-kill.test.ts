/**
 * kill -9 of the collector process under load, three times, at seeded moments, each followed by a
 * restart on the same port. The senders retry like an SDK (same event ids, backoff), so a request
 * whose events reached Kafka but whose answer was lost is sent again: the test checks both that no
 * acknowledged event is lost and that the re-sent ones are counted once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../../services/demo/generator.ts';
import { groupLag } from '../fixtures/kafka.ts';
import { type CollectorProcesses, collectorProcesses } from '../harness/collector-process.ts';
import { type ConsumerSetup, consumerSetup, distinctEvents, waitFor } from '../harness/consumer-process.ts';
import { checkAckedCounted, expectAckedCounted } from '../harness/invariant.ts';
import { activityBatches, RetryingSender, startLoad } from '../harness/sender.ts';

const SEED = 10_001;
const KILLS = 3;

describe('collector killed with SIGKILL under load', () => {
  let setup: ConsumerSetup;
  let collectors: CollectorProcesses;

  beforeAll(async () => {
    setup = await consumerSetup('collector_kill', 6);
    collectors = await collectorProcesses({
      kafkaBrokers: setup.at.kafkaBrokers,
      topic: setup.topic,
      partitions: 6,
    });
  });

  afterAll(async () => {
    await collectors?.close();
    await setup?.close();
  });

  it('loses no acknowledged event and counts re-sent ones once', async () => {
    const random = rng(SEED);
    const consumer = await setup.start({ BATCH_MAX_ROWS: '2000' });
    await collectors.start();
    const sender = new RetryingSender({ url: collectors.url, random });
    const load = startLoad({
      sender,
      concurrency: 4,
      next: activityBatches({ random, size: 50, users: 2_000, days: 3, tag: 'ckill' }),
    });
    const started = Date.now();
    const kills: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      // Seeded: the same run kills at the same offsets (the load decides what is in flight then).
      await sleep(1_000 + random() * 2_000);
      const before = sender.stats.requests;
      await collectors.kill();
      const down = 200 + random() * 1_000;
      await sleep(down);
      const t = Date.now();
      await collectors.start();
      kills.push(`kill ${k + 1} after ${before} requests, down ${Math.round(down + Date.now() - t)} ms`);
    }
    await sleep(2_000);
    const acked = await load.stop();
    const sendSeconds = (Date.now() - started) / 1000;

    await waitFor(
      'every acknowledged event written',
      () => distinctEvents(setup.db.client),
      (n) => n >= new Set(acked.map((a) => a.eventId)).size,
      90_000,
    );
    await waitFor(
      'lag 0',
      () => groupLag(setup.admin, setup.groupId, setup.topic),
      (n) => n === 0,
    );
    const report = await checkAckedCounted({
      client: setup.db.client,
      database: setup.db.name,
      clickhouseUrl: setup.at.clickhouseUrl,
      acked,
    });
    process.stderr.write(
      `[collector-kill] seed ${SEED}, ${sendSeconds.toFixed(1)} s of load, ${kills.join('; ')}; ` +
        `requests ${sender.stats.requests} (retries ${sender.stats.retries}, outcomes ${JSON.stringify(sender.stats.outcomes)}, ` +
        `max attempts ${sender.stats.maxAttempts}); ${report.summary}\n`,
    );

    // The kills cut requests in flight (connection errors seen by the senders), or the test proved nothing.
    expect(sender.stats.outcomes.network ?? 0).toBeGreaterThan(0);
    expect(sender.stats.rejected).toBe(0);
    expectAckedCounted(report);
    expect(consumer.child.exitCode).toBeNull();
  });
});
