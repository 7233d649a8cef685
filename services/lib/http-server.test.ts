import { describe, expect, it } from 'vitest';
import { serverTimeouts } from './http-server.ts';

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
