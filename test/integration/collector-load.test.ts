/**
 * Overload answers: a producer queue that is full, and a process under memory pressure, both say
 * 503 + Retry-After at once instead of accepting what they cannot make durable.
 */
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { kafkaBrokers } from '../harness/services.ts';
import { post, startCollector } from './collector-harness.ts';

it('answers 503 KAFKA_PRODUCER_OVERLOADED when the in-flight byte budget is exhausted', async () => {
  const c = await startCollector(
    kafkaBrokers(),
    {
      MAX_BATCH_EVENTS: '10000',
      MAX_BATCH_BYTES: String(4 * 1024 * 1024),
      KAFKA_MAX_QUEUED_BYTES: String(64 * 1024),
    },
    { geo: false },
  );
  try {
    const events = Array.from({ length: 5_000 }, () => ({
      event_id: randomUUID(),
      user_id: 'u',
      activity: 'a',
    }));
    const r = await post(`${c.url}/v1/events`, { events });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(r.body.code).toBe('KAFKA_PRODUCER_OVERLOADED');
    // Small requests still fit the budget.
    expect((await post(`${c.url}/v1/events`, { user_id: 'u', activity: 'a' })).status).toBe(200);
  } finally {
    await c.close();
  }
});

it('sheds load with 503 + Retry-After under memory pressure', async () => {
  const c = await startCollector(
    kafkaBrokers(),
    { MAX_HEAP_USED_BYTES: '1', RETRY_AFTER_SECONDS: '7' },
    { geo: false },
  );
  try {
    let r = await post(`${c.url}/v1/events`, { user_id: 'u', activity: 'a' });
    // under-pressure samples the heap periodically; the first samples may not be taken yet.
    for (let i = 0; i < 50 && r.status !== 503; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      r = await post(`${c.url}/v1/events`, { user_id: 'u', activity: 'a' });
    }
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('7');
  } finally {
    await c.close();
  }
});
