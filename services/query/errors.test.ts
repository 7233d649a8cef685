import { describe, expect, it } from 'vitest';
import { QUERY_ERRORS } from '../lib/error-codes.ts';
import { fromClickHouse } from './errors.ts';

const QUERY_BACKEND_FAILED = QUERY_ERRORS.backendFailed.code;
const QUERY_BACKEND_TRANSIENT = QUERY_ERRORS.backendTransient.code;
const QUERY_BACKEND_UNAVAILABLE = QUERY_ERRORS.backendUnavailable.code;
const QUERY_BUSY = QUERY_ERRORS.busy.code;
const QUERY_TOO_EXPENSIVE = QUERY_ERRORS.tooExpensive.code;

/** 18.16 formats errors as "Code: N, e.displayText() = ..."; the client leaves them unparsed. */
const server = (code: number): Error => new Error(`Code: ${code}, e.displayText() = DB::Exception: x`);

describe('fromClickHouse', () => {
  it('maps the per-query limits of the read-only user to 422 with advice', () => {
    for (const code of [158, 159, 241, 307, 396]) {
      const e = fromClickHouse(server(code));
      expect(e.code, String(code)).toBe(QUERY_TOO_EXPENSIVE);
      expect(e.statusCode).toBe(422);
      expect(e.message).toContain('narrow the date range');
    }
  });

  it('maps an unreachable server to a retriable 503', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const e = fromClickHouse(refused);
    expect(e).toMatchObject({ code: QUERY_BACKEND_UNAVAILABLE, statusCode: 503, retriable: true });
  });

  it('maps other server errors to 500, or 503 when the server says it is transient', () => {
    expect(fromClickHouse(server(60))).toMatchObject({ code: QUERY_BACKEND_FAILED, statusCode: 500 });
    expect(fromClickHouse(server(425))).toMatchObject({
      code: QUERY_BACKEND_TRANSIENT,
      statusCode: 503,
      retriable: true,
    });
  });

  it("maps the reader's quota and concurrency cap to 429, retriable", () => {
    for (const code of [201, 202]) {
      expect(fromClickHouse(server(code))).toMatchObject({
        code: QUERY_BUSY,
        statusCode: 429,
        retriable: true,
      });
    }
  });
});
