import { describe, expect, it } from 'vitest';
import { chooseHolder } from './kafka-lease.ts';

describe('chooseHolder', () => {
  it('keeps the lease with its holder when another member joins', () => {
    expect(
      chooseHolder([
        { memberId: 'a-joined-later', claims: false },
        { memberId: 'z-holder', claims: true },
      ]),
    ).toBe('z-holder');
  });

  it('gives an unheld lease to the smallest member id', () => {
    expect(
      chooseHolder([
        { memberId: 'b', claims: false },
        { memberId: 'a', claims: false },
      ]),
    ).toBe('a');
  });

  it('settles two claims (an expelled holder not told yet) on the smallest id', () => {
    expect(
      chooseHolder([
        { memberId: 'c', claims: true },
        { memberId: 'a', claims: false },
        { memberId: 'b', claims: true },
      ]),
    ).toBe('b');
  });

  it('has no holder without members', () => {
    expect(chooseHolder([])).toBeUndefined();
  });
});
