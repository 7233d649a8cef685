import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { retrier } from './retry.ts';

const policy = { initialMs: 1, maxMs: 2 };
const logger = pino({ level: 'silent' });

function recorder() {
  const calls: string[] = [];
  return {
    calls,
    hooks: {
      onRetrying: () => calls.push('retrying'),
      onRecovered: () => calls.push('recovered'),
      onAttemptFailed: (code: string) => calls.push(`failed:${code}`),
    },
  };
}

describe('retrier', () => {
  it('retries an outage until it passes, announcing the loop once and every failed attempt', async () => {
    const r = recorder();
    let n = 0;
    const v = await retrier(
      logger,
      policy,
      new AbortController().signal,
      r.hooks,
    )('look-up', async () => {
      n += 1;
      if (n < 3) throw new Error('connect ECONNREFUSED');
      return 'ok';
    });
    expect(v).toBe('ok');
    expect(r.calls).toEqual(['retrying', 'failed:unavailable', 'failed:unavailable', 'recovered']);
  });

  it('rethrows at once what giveUp says is not an outage, without starting a loop', async () => {
    const r = recorder();
    const boom = new Error('refused for good');
    await expect(
      retrier(
        logger,
        policy,
        new AbortController().signal,
        r.hooks,
      )(
        'look-up',
        async () => {
          throw boom;
        },
        (err) => err === boom,
      ),
    ).rejects.toBe(boom);
    expect(r.calls).toEqual([]);
  });

  it('stops when aborted, rethrowing the last failure and closing the loop', async () => {
    const r = recorder();
    const abort = new AbortController();
    let n = 0;
    await expect(
      retrier(
        logger,
        policy,
        abort.signal,
        r.hooks,
      )('look-up', async () => {
        n += 1;
        if (n === 2) abort.abort();
        throw new Error(`attempt ${n}`);
      }),
    ).rejects.toThrow('attempt 2');
    expect(r.calls).toEqual(['retrying', 'failed:unavailable', 'recovered']);
  });
});
