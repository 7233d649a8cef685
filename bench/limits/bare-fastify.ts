/**
 * Limit A of the collector benchmark: a bare Fastify server whose POST handler parses the same JSON
 * body (Fastify's default parser, same body limit) and answers 200 with a small JSON reply. No
 * validation, enrichment, Avro or Kafka: the most this machine's Node + Fastify can do per request.
 * PORT is the only input; bench/scenarios/collector.ts starts it.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false, bodyLimit: 500 * 1024 });
app.post('/v1/events', async (req) => {
  const body = req.body as { events?: unknown[] } | null;
  return { accepted: Array.isArray(body?.events) ? body.events.length : 1 };
});
app.get('/healthz', async () => ({ ok: true }));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
for (const s of ['SIGTERM', 'SIGINT'] as const)
  process.once(s, () => void app.close().then(() => process.exit(0)));
