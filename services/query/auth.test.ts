import { describe, expect, it } from 'vitest';
import { tokenChecker } from './auth.ts';

describe('tokenChecker', () => {
  it('lets everything through when no token is configured', () => {
    expect(tokenChecker([])(undefined)).toBe(true);
  });

  it('accepts any configured token as a bearer token and nothing else', () => {
    const check = tokenChecker(['alpha', 'beta']);
    expect(check('Bearer alpha')).toBe(true);
    expect(check('bearer beta')).toBe(true);
    expect(check(undefined)).toBe(false);
    expect(check('')).toBe(false);
    expect(check('Bearer gamma')).toBe(false);
    expect(check('Bearer alph')).toBe(false);
    expect(check('Basic YWxwaGE6')).toBe(false);
    expect(check('alpha')).toBe(false);
    expect(check('Bearer alpha beta')).toBe(false);
  });
});
