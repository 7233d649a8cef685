/**
 * The read API: active users, event counts and dimension values for any slice. Each handler
 * validates the whole query string with ../params.ts (one 400 listing every problem and the valid
 * names), then asks the store. The querystring schemas below document the parameters in OpenAPI;
 * they accept a string or a repeated key for every parameter, so validation (and its messages)
 * stays in one place and no unknown key is silently stripped.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { ERROR_BODY_SCHEMA, HttpError } from '../../lib/errors.ts';
import type { Histogram } from '../../lib/metrics.ts';
import { invalidParams } from '../errors.ts';
import {
  ACTIVE_USERS_PARAMS,
  DEFAULT_DIMENSION_VALUES,
  DIMENSION_VALUES_PARAMS,
  DIMENSIONS,
  EVENT_COUNT_PARAMS,
  type Limits,
  MAX_DIMENSION_VALUES,
  MAX_EXACT_RANGE_DAYS,
  type Parsed,
  parseActiveUsers,
  parseDimensionValues,
  parseEventCount,
  type RawQuery,
  type SliceQuery,
} from '../params.ts';
import { ACTIVE_USER_MEASURES, type QueryStore } from '../store.ts';

export interface ApiOptions {
  readonly store: QueryStore;
  readonly limits: Limits;
  readonly now: () => Date;
  readonly storeDuration: Histogram<'operation' | 'outcome'>;
}

const PARAM_DOCS: Record<string, string> = {
  from: 'First day, YYYY-MM-DD, inclusive (default: 29 days before `to`).',
  to: 'Last day, YYYY-MM-DD, inclusive (default: today in `tz`).',
  tz: 'IANA time zone whose calendar days are reported (default UTC).',
  window:
    '`rolling` (WAU = 7 days ending on the date, MAU = 30 days) or `calendar` (ISO week, calendar month to date).',
  group_by: `Comma-separated dimension names, at most 3. One of: ${DIMENSIONS.join(', ')}.`,
  include_test: 'Count test accounts (default false).',
  include_bots: 'Count traffic flagged as bots (default false).',
  limit: `Most values returned (default ${DEFAULT_DIMENSION_VALUES}, at most ${MAX_DIMENSION_VALUES}).`,
  exact: `Exact distinct counts from a scan of the raw events (the range and the 30 days before it, the windows' look-back) instead of the rollup sketches; ranges of at most ${MAX_EXACT_RANGE_DAYS} days (default false).`,
};

function querystringSchema(params: readonly string[]) {
  const properties: Record<string, unknown> = {};
  for (const p of params) {
    properties[p] = {
      type: ['string', 'array'],
      items: { type: 'string' },
      description:
        PARAM_DOCS[p] ??
        `Filter: only this ${p} (repeat the parameter for several values, combined with OR).`,
    };
  }
  return { type: 'object', properties };
}

const errorSchema = {
  ...ERROR_BODY_SCHEMA,
  properties: {
    ...ERROR_BODY_SCHEMA.properties,
    problems: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          param: { type: 'string' },
          message: { type: 'string' },
          valid: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
} as const;

const metaSchema = { type: 'object', additionalProperties: true } as const;

function rowSchema(measures: Record<string, { type: string }>) {
  const properties: Record<string, unknown> = { date: { type: 'string', format: 'date' } };
  for (const d of DIMENSIONS) properties[d] = { type: 'string' };
  Object.assign(properties, measures);
  return { type: 'object', properties };
}

const activeUsersRow = rowSchema({
  ...Object.fromEntries(
    ACTIVE_USER_MEASURES.map((m) => [m, { type: m === 'dau_mau' || m === 'wau_mau' ? 'number' : 'integer' }]),
  ),
  // Finished numbers and the exact scan are exact; sketches are estimates (clickhouse/README.md).
  exact: { type: 'boolean' },
});
const eventCountRow = rowSchema({ events: { type: 'integer' } });

const errorResponses = {
  400: errorSchema,
  401: errorSchema,
  422: errorSchema,
  429: errorSchema,
  503: errorSchema,
};

function sliceMeta(q: SliceQuery) {
  return {
    from: q.from,
    to: q.to,
    tz: q.tz,
    filters: q.filters,
    include_test: q.includeTest,
    include_bots: q.includeBots,
  };
}

function validOrThrow<T>(p: Parsed<T>): T {
  if (!p.ok) throw invalidParams(p.problems);
  return p.value;
}

export const apiRoutes: FastifyPluginAsync<ApiOptions> = async (app: FastifyInstance, o) => {
  /** Times a store call; the outcome label is the error code (a fixed set) or "ok". */
  async function timed<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const end = o.storeDuration.startTimer({ operation });
    try {
      const out = await run();
      end({ outcome: 'ok' });
      return out;
    } catch (err) {
      end({ outcome: err instanceof HttpError ? err.code : 'error' });
      throw err;
    }
  }

  app.get(
    '/v1/active-users',
    {
      schema: {
        summary: 'DAU, WAU, MAU, stickiness, new and returning users per day for a slice',
        tags: ['metrics'],
        querystring: querystringSchema(ACTIVE_USERS_PARAMS),
        response: {
          200: {
            type: 'object',
            properties: { rows: { type: 'array', items: activeUsersRow }, meta: metaSchema },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const q = validOrThrow(parseActiveUsers(request.query as RawQuery, o.limits, o.now()));
      const r = await timed('active_users', () => o.store.activeUsers(q));
      return {
        rows: r.rows,
        meta: {
          ...sliceMeta(q),
          window: q.window,
          group_by: q.groupBy,
          exact: q.exact,
          source: r.source,
          from_rollup: r.fromRollup,
          finished_days: r.finishedDays ?? 0,
          cached_days: r.cachedDays ?? 0,
          truncated: r.truncated,
          row_count: r.rows.length,
        },
      };
    },
  );

  app.get(
    '/v1/events/count',
    {
      schema: {
        summary: 'Deduplicated event counts per day for a slice',
        tags: ['metrics'],
        querystring: querystringSchema(EVENT_COUNT_PARAMS),
        response: {
          200: {
            type: 'object',
            properties: { rows: { type: 'array', items: eventCountRow }, meta: metaSchema },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const q = validOrThrow(parseEventCount(request.query as RawQuery, o.limits, o.now()));
      const r = await timed('event_count', () => o.store.eventCount(q));
      return {
        rows: r.rows,
        meta: {
          ...sliceMeta(q),
          group_by: q.groupBy,
          source: r.source,
          from_rollup: r.fromRollup,
          truncated: r.truncated,
          row_count: r.rows.length,
        },
      };
    },
  );

  app.get(
    '/v1/dimensions/:name',
    {
      schema: {
        summary: 'Distinct values of a dimension with their active-user counts (for filter pickers)',
        tags: ['metrics'],
        params: {
          type: 'object',
          properties: { name: { type: 'string', description: `One of: ${DIMENSIONS.join(', ')}` } },
        },
        querystring: querystringSchema(DIMENSION_VALUES_PARAMS),
        response: {
          200: {
            type: 'object',
            properties: {
              dimension: { type: 'string' },
              values: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { value: { type: 'string' }, users: { type: 'integer' } },
                },
              },
              meta: metaSchema,
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      const q = validOrThrow(parseDimensionValues(name, request.query as RawQuery, o.limits, o.now()));
      const r = await timed('dimension_values', () => o.store.dimensionValues(q));
      return {
        dimension: r.dimension,
        values: r.values,
        meta: { ...sliceMeta(q), limit: q.limit, truncated: r.truncated },
      };
    },
  );
};
