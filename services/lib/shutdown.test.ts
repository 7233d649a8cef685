import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createShutdown } from './shutdown.ts';

const logger = pino({ level: 'silent' });

describe('createShutdown', () => {
  it('runs every step once, in order, and exits 0', async () => {
    const calls: string[] = [];
    const codes: number[] = [];
    const s = createShutdown({
      logger,
      deadlineMs: 5_000,
      exit: (c) => codes.push(c),
      steps: [
        { name: 'a', run: async () => void calls.push('a') },
        { name: 'b', run: async () => void calls.push('b') },
      ],
    });
    await Promise.all([s.run('SIGTERM'), s.run('SIGTERM')]);
    expect(calls).toEqual(['a', 'b']);
    expect(codes).toEqual([0]);
    expect(s.isShuttingDown()).toBe(true);
  });

  it('keeps going after a failing step and exits 1', async () => {
    const calls: string[] = [];
    const codes: number[] = [];
    const s = createShutdown({
      logger,
      deadlineMs: 5_000,
      exit: (c) => codes.push(c),
      steps: [
        {
          name: 'boom',
          run: async () => {
            throw new Error('boom');
          },
        },
        { name: 'close', run: async () => void calls.push('close') },
      ],
    });
    await s.run('SIGINT');
    expect(calls).toEqual(['close']);
    expect(codes).toEqual([1]);
  });

  it('exits 1 when the deadline passes', async () => {
    const codes: number[] = [];
    const s = createShutdown({
      logger,
      deadlineMs: 20,
      exit: (c) => codes.push(c),
      steps: [{ name: 'hang', run: () => new Promise(() => {}) }],
    });
    void s.run('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    expect(codes).toEqual([1]);
  });
});
