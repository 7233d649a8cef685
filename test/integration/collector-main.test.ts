/**
 * The real process (services/collector/main.ts): config errors are listed one per line with exit
 * code 2; SIGTERM drains in-flight requests, flushes the producer and exits 0, and every request
 * answered 2xx is on the topic; SIGHUP re-reads WRITE_KEYS_FILE.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKafka } from '../../services/lib/kafka.ts';
import { freshTopics, kafkaBrokers, type TestTopics } from '../harness/services.ts';
import { readTopic, WRITE_KEY } from './collector-harness.ts';

const MAIN = new URL('../../services/collector/main.ts', import.meta.url).pathname;
let topics: TestTopics;

beforeAll(async () => {
  topics = await freshTopics('collector-main', 1, 3);
});
afterAll(async () => {
  await topics?.drop();
});

function start(env: Record<string, string>): {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
} {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: 'pipe',
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return { child, stdout: () => out, stderr: () => err };
}

it('lists every bad config value and exits 2', async () => {
  const p = start({ PORT: 'eighty', ANONYMIZE_IP: 'perhaps' });
  const [code] = await once(p.child, 'exit');
  expect(code).toBe(2);
  const lines = p
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('  '));
  expect(lines.map((l) => l.trim().split(':')[0])).toEqual(['PORT', 'WRITE_KEYS', 'ANONYMIZE_IP']);
});

it('refuses to start with the documented dev key on a non-loopback address, unless INSECURE_DEV', async () => {
  const p = start({ HOST: '0.0.0.0', PORT: '0', WRITE_KEYS: 'local-dev-key:local', GEOIP_ENABLED: 'false' });
  const [code] = await once(p.child, 'exit');
  expect(code).toBe(2);
  expect(p.stderr()).toMatch(
    /WRITE_KEYS: the documented dev key local-dev-key is accepted on HOST=0\.0\.0\.0/,
  );
});

it('drains in-flight requests on SIGTERM and exits 0', async () => {
  const [topic = ''] = topics.names;
  const p = start({
    PORT: '0',
    WRITE_KEYS: `${WRITE_KEY}:main`,
    KAFKA_BROKERS: kafkaBrokers().join(','),
    KAFKA_TOPIC: topic,
    GEOIP_ENABLED: 'false',
  });
  while (!/Server listening at/.test(p.stdout())) {
    if (p.child.exitCode !== null) throw new Error(`collector exited: ${p.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const url = /Server listening at (http:\/\/[^"]+)/.exec(p.stdout())?.[1] ?? '';
  expect((await fetch(`${url}/readyz`)).status).toBe(200);

  // A request in flight when the signal arrives: headers and half the body are sent, the rest
  // only after the process logged that it is shutting down.
  const id = randomUUID();
  const body = Buffer.from(JSON.stringify({ event_id: id, user_id: 'u', activity: 'a' }));
  const inFlight = request(`${url}/v1/events`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'content-length': body.length,
      authorization: `Bearer ${WRITE_KEY}`,
    },
  });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    inFlight.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    inFlight.on('error', reject);
  });
  inFlight.write(body.subarray(0, 10));
  await once(inFlight, 'socket');
  // Let the server parse the request head before the signal (ordering, not a timing assertion).
  await new Promise((resolve) => setTimeout(resolve, 300));
  p.child.kill('SIGTERM');
  while (!/shutting down/.test(p.stdout())) await new Promise((resolve) => setTimeout(resolve, 20));
  inFlight.end(body.subarray(10));

  const answered = await response;
  expect(answered.status, answered.body).toBe(200);
  const [code] = await once(p.child, 'exit');
  expect(code, p.stdout()).toBe(0);
  expect(p.stdout()).toContain('kafka producer closed');
  const acknowledged = [id];

  const reader = await readTopic(
    createKafka({ brokers: kafkaBrokers(), clientId: 'collector-main-reader' }),
    topic,
  );
  try {
    await reader.waitFor((m) => acknowledged.every((id) => m.some((x) => x.value.event_id === id)));
  } finally {
    await reader.stop();
  }
});

it('rotates write keys from WRITE_KEYS_FILE on SIGHUP, never logging a key', async () => {
  const [topic = ''] = topics.names;
  const dir = mkdtempSync(join(tmpdir(), 'collector-keys-'));
  const file = join(dir, 'write-keys');
  writeFileSync(file, '# rotated by the test\nk-old-7f3a:main\n');
  const p = start({
    PORT: '0',
    WRITE_KEYS_FILE: file,
    KAFKA_BROKERS: kafkaBrokers().join(','),
    KAFKA_TOPIC: topic,
    GEOIP_ENABLED: 'false',
  });
  try {
    while (!/Server listening at/.test(p.stdout())) {
      if (p.child.exitCode !== null) throw new Error(`collector exited: ${p.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const url = /Server listening at (http:\/\/[^"]+)/.exec(p.stdout())?.[1] ?? '';
    const send = async (key: string) =>
      (
        await fetch(`${url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ user_id: 'u', activity: 'a' }),
        })
      ).status;
    expect(await send('k-old-7f3a')).toBe(200);
    expect(await send('k-new-91bc')).toBe(401);

    // A file that does not parse keeps the keys in use.
    writeFileSync(file, 'k-new-91bc:main\nbroken-line-c0de\n');
    p.child.kill('SIGHUP');
    while (!/write keys file not reloaded/.test(p.stdout())) await new Promise((r) => setTimeout(r, 50));
    expect(await send('k-old-7f3a')).toBe(200);

    writeFileSync(file, 'k-new-91bc:main\n');
    p.child.kill('SIGHUP');
    while ((await send('k-new-91bc')) !== 200) await new Promise((r) => setTimeout(r, 50));
    expect(await send('k-old-7f3a')).toBe(401);
    for (const secret of ['k-old-7f3a', 'k-new-91bc', 'broken-line-c0de']) {
      expect(p.stdout()).not.toContain(secret);
      expect(p.stderr()).not.toContain(secret);
    }
  } finally {
    p.child.kill('SIGTERM');
    await once(p.child, 'exit');
  }
});
