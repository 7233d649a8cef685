/**
 * Client clocks hours off: batches whose sent_at and event timestamps are both shifted by the
 * client's error (+10 h, -9 h, +26 h), through the real collector process to the real consumer.
 * Each event's true instant is chosen so that the uncorrected timestamp falls on another UTC day:
 * DAU/WAU/MAU equal the truth only if the collector corrected the skew (timestamp + received_at -
 * sent_at) for every event.
 */

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../../services/demo/generator.ts';
import { DAY_MS, HOUR_MS } from '../../services/lib/time.ts';
import { groupLag } from '../fixtures/kafka.ts';
import { type CollectorProcesses, collectorProcesses } from '../harness/collector-process.ts';
import { type ConsumerSetup, consumerSetup, distinctEvents, waitFor } from '../harness/consumer-process.ts';
import { type AckedEvent, checkAckedCounted, expectAckedCounted } from '../harness/invariant.ts';
import { type PlannedBatch, RetryingSender } from '../harness/sender.ts';

/** Client error, and the true hour of day (UTC, yesterday) that the error moves to another day. */
const CLOCKS = [
  { skewHours: 10, trueHour: 20 },
  { skewHours: -9, trueHour: 4 },
  { skewHours: 26, trueHour: 12 },
] as const;

describe('client clocks hours off', () => {
  let setup: ConsumerSetup;
  let collectors: CollectorProcesses;

  beforeAll(async () => {
    setup = await consumerSetup('clock_skew', 3);
    collectors = await collectorProcesses({
      kafkaBrokers: setup.at.kafkaBrokers,
      topic: setup.topic,
      partitions: 3,
    });
    await collectors.start();
  });

  afterAll(async () => {
    await collectors?.close();
    await setup?.close();
  });

  it('counts every event on the day it happened, not the day the client clock said', async () => {
    await setup.start();
    const sender = new RetryingSender({ url: collectors.url, random: rng(10_003) });
    const yesterday = Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS;
    const acked: AckedEvent[] = [];
    for (const [c, clock] of CLOCKS.entries()) {
      const skew = clock.skewHours * HOUR_MS;
      const events = Array.from({ length: 200 }, (_, i) => {
        // Seconds apart from the true hour: far from midnight either way.
        const trueMs = yesterday + clock.trueHour * HOUR_MS + i * 1_000;
        const eventId = randomUUID();
        const actor = `skew${c}-u${i % 150}`;
        return {
          wire: {
            event_id: eventId,
            user_id: actor,
            activity: 'view',
            feature: 'clock',
            timestamp: new Date(trueMs + skew).toISOString(),
          },
          acked: { eventId, actor, timestampMs: trueMs },
        };
      });
      const batch: PlannedBatch = { events, sentAt: new Date(Date.now() + skew).toISOString() };
      acked.push(...(await sender.send(batch)));
    }
    await waitFor(
      'every event',
      () => distinctEvents(setup.db.client),
      (n) => n >= acked.length,
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
      `[clock-skew] skews ${CLOCKS.map((c) => `${c.skewHours} h`).join(', ')}: outcomes ${JSON.stringify(sender.stats.outcomes)}; ${report.summary}\n`,
    );

    expect(sender.stats.rejected).toBe(0);
    expect(acked).toHaveLength(CLOCKS.length * 200);
    expectAckedCounted(report);
  });
});
