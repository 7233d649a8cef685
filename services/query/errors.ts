/**
 * How the query service turns failures into its registered errors (services/lib/error-codes.ts).
 * ClickHouse failures are classified by numeric server code (services/lib/clickhouse.ts).
 */
import { classifyClickHouseError } from '../lib/clickhouse.ts';
import { QUERY_ERRORS } from '../lib/error-codes.ts';
import type { HttpError } from '../lib/errors.ts';
import type { ParamProblem } from './params.ts';

/** 400 with every problem, each naming its parameter (and the valid values where there is a list). */
export function invalidParams(problems: readonly ParamProblem[]): HttpError {
  return QUERY_ERRORS.paramInvalid(problems.map((p) => p.message).join('; '), { detail: { problems } });
}

/**
 * The per-query limits of the read-only user (rows read, execution time, memory, result size)
 * stop a query that is too large for the service; the caller narrows the range or the group-by.
 */
const LIMIT_CODES = new Set([
  158, // TOO_MANY_ROWS
  159, // TIMEOUT_EXCEEDED
  160, // TOO_SLOW
  241, // MEMORY_LIMIT_EXCEEDED
  307, // TOO_MANY_BYTES
  396, // TOO_MANY_ROWS_OR_BYTES
]);

export function fromClickHouse(err: unknown): HttpError {
  const f = classifyClickHouseError(err);
  const cause = { cause: err };
  if (f.kind === 'unavailable') return QUERY_ERRORS.backendUnavailable(cause);
  // The read-only user's quota (per hour and minute: deploy/local/stack.ts) and concurrency cap
  // bound what all API callers together may cost ClickHouse: a caller retries later.
  if (f.code === 201 || f.code === 202) {
    return QUERY_ERRORS.busy(f.code === 201 ? 'quota is spent' : 'concurrency limit is reached', cause);
  }
  if (LIMIT_CODES.has(f.code)) return QUERY_ERRORS.tooExpensive(f.code, cause);
  return f.retriable
    ? QUERY_ERRORS.backendTransient(f.code, cause)
    : QUERY_ERRORS.backendFailed(f.code, cause);
}
