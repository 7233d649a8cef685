/**
 * The small HTTP port of a service without an API of its own (consumer, refresher): /healthz (the
 * process is alive and not failed), /readyz (doing its work: for the consumer in the group and
 * writing, for the refresher its last pass succeeded) and /metrics (Prometheus).
 */
import Fastify from 'fastify';
import type { Logger } from './logger.ts';
import type { Registry } from './metrics.ts';

export interface HealthDeps {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly health: () => { ok: boolean; detail: Record<string, unknown> };
  readonly readiness: () => { ok: boolean; detail: Record<string, unknown> };
}

const statusSchema = {
  response: {
    200: { type: 'object', additionalProperties: true },
    503: { type: 'object', additionalProperties: true },
  },
};

export function buildOpsHttp(deps: HealthDeps) {
  const app = Fastify({ loggerInstance: deps.logger.child({ component: 'http' }), bodyLimit: 1_024 });
  app.get('/healthz', { schema: statusSchema, logLevel: 'warn' }, async (_req, reply) => {
    const h = deps.health();
    return reply.code(h.ok ? 200 : 503).send({ status: h.ok ? 'ok' : 'failed', ...h.detail });
  });
  app.get('/readyz', { schema: statusSchema, logLevel: 'warn' }, async (_req, reply) => {
    const r = deps.readiness();
    return reply.code(r.ok ? 200 : 503).send({ status: r.ok ? 'ready' : 'not ready', ...r.detail });
  });
  app.get('/metrics', { logLevel: 'warn' }, async (_req, reply) => {
    return reply.type(deps.registry.contentType).send(await deps.registry.metrics());
  });
  return app;
}
