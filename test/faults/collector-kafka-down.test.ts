/**
 * Kafka stops: requests get 503 + Retry-After within a bounded time, never a 2xx, and readiness
 * turns off. Kafka comes back: the same collector process accepts again. Runs on a private stack
 * so stopping the broker disturbs no other test file.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type PrivateStack, privateStack } from '../../deploy/local/private-stack.ts';
import { post, readTopic, startCollector, type TestCollector } from '../integration/collector-harness.ts';

let stack: PrivateStack;
let c: TestCollector;

beforeAll(async () => {
  stack = await privateStack('collector-kafka-down');
  await stack.startKafka();
  c = await startCollector(
    [stack.kafkaBrokers],
    { KAFKA_PUBLISH_TIMEOUT_MS: '5000', KAFKA_RETRIES: '1' },
    { geo: false },
  );
});
afterAll(async () => {
  await c?.app.close();
  await c?.producer.close().catch(() => undefined);
  await stack?.destroy();
});

const event = () => ({ event_id: randomUUID(), user_id: 'u', activity: 'a' });

it('answers 503 while Kafka is down and recovers without a restart', async () => {
  const acknowledged: string[] = [];
  const before = event();
  expect((await post(`${c.url}/v1/events`, before)).status).toBe(200);
  acknowledged.push(before.event_id);

  // A hung broker: the first request's publish waits for acks that do not come. Once it has waited
  // longer than MAX_PUBLISH_BACKLOG_MS + PUBLISH_BACKLOG_INTERVAL_MS (1 s by default), new intake is refused at once, before its body is read
  // (admission control, http/admission.ts), instead of queueing behind it.
  await stack.pause('kafka');
  const first = event();
  const waiting = post(`${c.url}/v1/events`, first);
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  const shed = await post(`${c.url}/v1/events`, event());
  expect(shed.status).toBe(503);
  expect(shed.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(shed.body.code).toBe('COLLECTOR_OVERLOADED');
  await stack.resume('kafka');
  // Its acks come late or never: acknowledged (then durable, checked below) or a retriable 503.
  const late = await waiting;
  if (late.status === 200) acknowledged.push(first.event_id);
  else expect(late.body.code).toMatch(/^KAFKA_/);

  await stack.stopKafka();
  for (let i = 0; i < 3; i++) {
    // post() aborts after 60 s: a hang fails the test instead of passing it.
    const r = await post(`${c.url}/v1/events`, event());
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(r.body.code).toMatch(/^KAFKA_/);
  }
  expect((await fetch(`${c.url}/readyz`)).status).toBe(503);

  await stack.startKafka();
  let recovered = false;
  for (let attempt = 0; attempt < 60 && !recovered; attempt++) {
    const e = event();
    const r = await post(`${c.url}/v1/events`, e);
    if (r.status === 200) {
      acknowledged.push(e.event_id);
      recovered = true;
    } else {
      expect(r.status).toBe(503);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
  expect(recovered).toBe(true);
  expect((await fetch(`${c.url}/readyz`)).status).toBe(200);

  // Every acknowledged event is durable on the topic.
  const reader = await readTopic(c.kafka, c.topic);
  try {
    await reader.waitFor((m) => acknowledged.every((id) => m.some((x) => x.value.event_id === id)));
  } finally {
    await reader.stop();
  }
});
