import { describe, expect, it } from 'vitest';
import { tokenChecker } from './auth.ts';

describe('tokenChecker', () => {
  it('matches nothing when no token is configured', () => {
    expect(tokenChecker([])(undefined)).toBe(-1);
    expect(tokenChecker([])('Bearer anything')).toBe(-1);
  });

  it('names the configured token a bearer header carries, however the scheme is spelled', () => {
    const check = tokenChecker(['alpha', 'beta']);
    expect(check('Bearer alpha')).toBe(0);
    expect(check('bearer beta')).toBe(1);
    expect(check('BEARER   beta  ')).toBe(1);
    expect(check(undefined)).toBe(-1);
    expect(check('')).toBe(-1);
    expect(check('Bearer gamma')).toBe(-1);
    expect(check('Bearer alph')).toBe(-1);
    expect(check('Basic YWxwaGE6')).toBe(-1);
    expect(check('alpha')).toBe(-1);
    expect(check('Bearer alpha beta')).toBe(-1);
  });
});
