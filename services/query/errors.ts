/**
 * Errors of the query service, with stable codes a client can switch on and the HTTP status each
 * maps to. ClickHouse failures are classified by numeric server code (services/lib/clickhouse.ts).
 */
import { classifyClickHouseError } from '../lib/clickhouse.ts';
import { PipelineError } from '../lib/errors.ts';
import type { ParamProblem } from './params.ts';

export const QUERY_PARAM_INVALID = 'QUERY_PARAM_INVALID';
export const QUERY_UNAUTHORIZED = 'QUERY_UNAUTHORIZED';
export const QUERY_TOO_EXPENSIVE = 'QUERY_TOO_EXPENSIVE';
export const QUERY_BACKEND_UNAVAILABLE = 'QUERY_BACKEND_UNAVAILABLE';
export const QUERY_BACKEND_FAILED = 'QUERY_BACKEND_FAILED';
export const QUERY_BUSY = 'QUERY_BUSY';

export class QueryError extends PipelineError {
  readonly statusCode: number;
  readonly problems: readonly ParamProblem[];

  constructor(
    code: string,
    statusCode: number,
    message: string,
    options: { retriable?: boolean; cause?: unknown; problems?: readonly ParamProblem[] } = {},
  ) {
    super(code, message, options);
    this.name = 'QueryError';
    this.statusCode = statusCode;
    this.problems = options.problems ?? [];
  }
}

export function invalidParams(problems: readonly ParamProblem[]): QueryError {
  return new QueryError(QUERY_PARAM_INVALID, 400, problems.map((p) => p.message).join('; '), { problems });
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

export function fromClickHouse(err: unknown): QueryError {
  const f = classifyClickHouseError(err);
  if (f.kind === 'unavailable') {
    return new QueryError(QUERY_BACKEND_UNAVAILABLE, 503, 'the analytics database is not reachable', {
      retriable: true,
      cause: err,
    });
  }
  // The read-only user's quota (per hour and minute: deploy/local/stack.ts) and concurrency cap
  // bound what all API callers together may cost ClickHouse: a caller retries later.
  if (f.code === 201 || f.code === 202) {
    return new QueryError(
      QUERY_BUSY,
      429,
      `the analytics database's read ${f.code === 201 ? 'quota is spent' : 'concurrency limit is reached'}; retry later`,
      { retriable: true, cause: err },
    );
  }
  if (LIMIT_CODES.has(f.code)) {
    return new QueryError(
      QUERY_TOO_EXPENSIVE,
      422,
      `the query hit a per-query limit (ClickHouse code ${f.code}); narrow the date range, filters or group_by`,
      { cause: err },
    );
  }
  return new QueryError(
    QUERY_BACKEND_FAILED,
    f.retriable ? 503 : 500,
    `the analytics query failed (ClickHouse code ${f.code})`,
    {
      retriable: f.retriable,
      cause: err,
    },
  );
}
