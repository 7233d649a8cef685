/**
 * The source configuration RudderStack's browser SDK (@rudderstack/analytics-js v3) fetches at load
 * from its control plane (`configUrl`, default api.rudderstack.com) before it sends anything: with
 * `configUrl` set to the collector, it gets a source with no device-mode destinations (so it loads
 * no integration from a CDN) and with its own error and metrics reporting off (those would post to
 * RudderStack's endpoints), and then sends its events to the data plane URL, the collector's
 * Segment-compatible routes. The SDK authenticates with its write key as HTTP Basic user, so an
 * unknown key fails the load here, before any event is lost.
 */
import type { FastifyPluginAsync } from 'fastify';

const SOURCE_CONFIG_SCHEMA = {
  type: 'object',
  required: ['source'],
  properties: {
    source: {
      type: 'object',
      required: ['id', 'name', 'enabled', 'config', 'destinations'],
      properties: {
        id: { type: 'string', description: "The write key's source name." },
        name: { type: 'string' },
        workspaceId: { type: 'string' },
        enabled: { type: 'boolean' },
        config: { type: 'object', additionalProperties: true },
        destinations: { type: 'array', items: { type: 'object' }, description: 'Always empty.' },
      },
    },
  },
} as const;

export const rudderStackConfigRoutes: FastifyPluginAsync = async (app) => {
  // The SDK asks for /sourceConfig/ under configUrl (it appends the path unless configUrl has it).
  for (const url of ['/sourceConfig', '/sourceConfig/']) {
    app.get(
      url,
      {
        schema: {
          summary: 'RudderStack browser SDK source configuration',
          tags: ['rudderstack'],
          querystring: {
            type: 'object',
            description: 'Sent by the SDK and ignored (p, v, build, writeKey, lock*Version).',
            additionalProperties: true,
          },
          response: { 200: SOURCE_CONFIG_SCHEMA, '4xx': { $ref: 'errorResponse#' } },
        },
      },
      async (req) => ({
        source: {
          id: req.source,
          name: req.source,
          workspaceId: 'collector',
          enabled: true,
          config: { statsCollection: { errors: { enabled: false }, metrics: { enabled: false } } },
          destinations: [],
        },
      }),
    );
  }
};
