/** Operational endpoints: liveness, readiness (Kafka reachable, producer healthy) and metrics. */
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from '../../lib/metrics.ts';
import type { EventSink } from '../publisher.ts';

export interface OpsRoutesOptions {
  readonly sink: EventSink;
  readonly registry: Registry;
  readonly readinessTimeoutMs: number;
  readonly isShuttingDown: () => boolean;
}

const STATUS_SCHEMA = {
  type: 'object',
  properties: { status: { type: 'string' }, reason: { type: 'string' } },
} as const;

export const opsRoutes: FastifyPluginAsync<OpsRoutesOptions> = async (app, o) => {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness: the process answers', tags: ['ops'], response: { 200: STATUS_SCHEMA } } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: Kafka reachable and the producer healthy',
        tags: ['ops'],
        response: { 200: STATUS_SCHEMA, 503: STATUS_SCHEMA },
      },
    },
    async (_req, reply) => {
      if (o.isShuttingDown()) return reply.code(503).send({ status: 'not ready', reason: 'shutting down' });
      if (await o.sink.check(o.readinessTimeoutMs)) return { status: 'ready' };
      return reply.code(503).send({ status: 'not ready', reason: 'kafka unavailable' });
    },
  );

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['ops'] } }, async (_req, reply) => {
    reply.type(o.registry.contentType);
    return o.registry.metrics();
  });
};
