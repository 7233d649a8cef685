import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import Fastify from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { COLLECTOR_ERRORS } from './error-codes.ts';
import { bodyDeadline, serverTimeouts } from './http-server.ts';

describe('serverTimeouts', () => {
  it('never closes an idle socket before the keep-alive time the server advertises (clients would reuse it)', () => {
    for (const [requestTimeoutMs, longestHandlingMs] of [
      [1_000, 10_000],
      [30_000, 10_000],
      [10_000, 20_000],
      [100_000, 200_000],
    ] as const) {
      const t = serverTimeouts({ requestTimeoutMs, longestHandlingMs });
      expect(t.connectionTimeout).toBeGreaterThan(t.keepAliveTimeout ?? 0);
      expect(t.connectionTimeout).toBeGreaterThanOrEqual(requestTimeoutMs + longestHandlingMs);
      expect(t.requestTimeout).toBe(requestTimeoutMs);
    }
  });
});

describe('bodyDeadline', () => {
  const DEADLINE_MS = 54_321;
  afterEach(() => vi.restoreAllMocks());

  /** A server with the hook, and a raw socket to it (so the test decides how the body arrives). */
  async function serve() {
    const app = Fastify();
    app.addHook('onRequest', bodyDeadline(DEADLINE_MS, COLLECTOR_ERRORS.requestTimeout));
    app.post('/', async () => ({ ok: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const socket = connect((app.server.address() as AddressInfo).port, '127.0.0.1');
    await once(socket, 'connect');
    return { app, socket };
  }
  const head = (length: number) =>
    `POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;
  const deadlines = (spy: { mock: { calls: unknown[][] } }) =>
    spy.mock.calls.filter((c) => c[1] === DEADLINE_MS).length;

  it('arms no timer for a body that came with its headers, and one for a body still on its way', async () => {
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const { app, socket } = await serve();
    try {
      socket.write(`${head(2)}{}`);
      await once(socket, 'data');
      expect(deadlines(timers)).toBe(0);
      // Half the body: the request waits for the rest, under the deadline.
      socket.write(`${head(4)}{}`);
      await vi.waitFor(() => expect(deadlines(timers)).toBe(1));
    } finally {
      socket.destroy();
      await app.close();
    }
  });
});
