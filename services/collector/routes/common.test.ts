import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import { expect, it } from 'vitest';
import { documentedBody } from './common.ts';

it('documents a route body in OpenAPI without Fastify validating requests against it', async () => {
  const app = Fastify();
  await app.register(swagger, { openapi: { info: { title: 't', version: '1' } } });
  const body = { type: 'object', required: ['events'], properties: { events: { type: 'array' } } };
  app.post('/v1/events', { config: documentedBody(body) }, async (req) => ({ got: req.body }));
  await app.ready();

  // Refused by the schema, yet handled: per-event validation (validation/) decides, not Fastify.
  const res = await app.inject({ method: 'POST', url: '/v1/events', payload: { events: 'not an array' } });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ got: { events: 'not an array' } });

  const doc = app.swagger() as { paths: Record<string, { post?: { requestBody?: unknown } }> };
  expect(doc.paths['/v1/events']?.post?.requestBody).toMatchObject({
    content: { 'application/json': { schema: { required: ['events'] } } },
  });
});
