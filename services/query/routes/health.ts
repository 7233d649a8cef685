/**
 * /healthz: the process answers. /readyz: it is not shutting down and ClickHouse answers a trivial
 * query as the service's own user (so a wrong password or a missing user shows as not ready).
 * /metrics: the service's own Prometheus registry.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from '../../lib/metrics.ts';

export interface HealthOptions {
  readonly registry: Registry;
  readonly ping: () => Promise<void>;
  readonly isShuttingDown: () => boolean;
}

const statusSchema = {
  type: 'object',
  properties: { status: { type: 'string' }, reason: { type: 'string' } },
} as const;

export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, o) => {
  app.get(
    '/healthz',
    { schema: { tags: ['ops'], response: { 200: statusSchema } }, logLevel: 'warn' },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    { schema: { tags: ['ops'], response: { 200: statusSchema, 503: statusSchema } }, logLevel: 'warn' },
    async (request, reply) => {
      if (o.isShuttingDown()) return reply.code(503).send({ status: 'unavailable', reason: 'shutting down' });
      try {
        await o.ping();
        return { status: 'ok' };
      } catch (err) {
        request.log.warn({ err }, 'readiness: clickhouse does not answer');
        return reply.code(503).send({ status: 'unavailable', reason: 'clickhouse does not answer' });
      }
    },
  );

  app.get('/metrics', { schema: { tags: ['ops'] }, logLevel: 'warn' }, async (_request, reply) => {
    reply.type(o.registry.contentType);
    return o.registry.metrics();
  });
};
