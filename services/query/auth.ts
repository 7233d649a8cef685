/**
 * Bearer-token read access. With no tokens configured the API is open (the local stack); with
 * QUERY_TOKENS set, every /v1 request needs `Authorization: Bearer <one of them>`. Tokens are
 * compared as SHA-256 digests with timingSafeEqual, so neither length nor content leaks by timing.
 *
 * Rate limits are keyed by the principal, never by the raw header: a request authenticated by a
 * token counts against that token (however its header is spelled: `bearer`, extra spaces), any
 * other request against its client address. So a header value does not buy a fresh budget, and
 * failed attempts (401s) are throttled per address like everything else: the limit runs between
 * identifying the principal and refusing the unauthenticated.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { QUERY_ERRORS } from '../lib/error-codes.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** `token:<n>` (the n-th configured token) or `ip:<client address>`: the rate-limit key. */
    principal: string;
    /** Whether /v1 may answer it (a valid token, or no tokens configured). */
    authorized: boolean;
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The index of the configured token the header carries as a bearer token, else -1. */
export function tokenChecker(tokens: readonly string[]): (header: string | undefined) => number {
  const digests = tokens.map(digest);
  return (header) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m?.[1] || digests.length === 0) return -1;
    const got = digest(m[1]);
    // Compare with every token, not up to the first match, so timing does not tell which one matched.
    let found = -1;
    for (const [i, d] of digests.entries()) if (timingSafeEqual(d, got)) found = i;
    return found;
  };
}

/** onRequest: who the request is (principal) and whether it may pass; refuses nothing itself. */
export function identifyHook(tokens: readonly string[]) {
  const check = tokenChecker(tokens);
  return async (request: FastifyRequest): Promise<void> => {
    const n = check(request.headers.authorization);
    request.principal = n >= 0 ? `token:${n}` : `ip:${request.ip}`;
    request.authorized = tokens.length === 0 || n >= 0;
  };
}

/** onRequest, after the rate limit: 401 for a request identifyHook did not authorize. */
export function requireAuthorized(setting: 'QUERY_TOKENS' | 'QUERY_ADMIN_TOKENS') {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (request.authorized) return;
    reply.header('www-authenticate', 'Bearer realm="query"');
    throw QUERY_ERRORS.unauthorized(setting);
  };
}
