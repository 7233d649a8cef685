/**
 * Bearer-token read access. With no tokens configured the API is open (the local stack); with
 * QUERY_TOKENS set, every /v1 request needs `Authorization: Bearer <one of them>`. Tokens are
 * compared as SHA-256 digests with timingSafeEqual, so neither length nor content leaks by timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { QUERY_UNAUTHORIZED, QueryError } from './errors.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export function tokenChecker(tokens: readonly string[]): (header: string | undefined) => boolean {
  const digests = tokens.map(digest);
  return (header) => {
    if (digests.length === 0) return true;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m?.[1]) return false;
    const got = digest(m[1]);
    // Compare with every token, not the first match, so timing does not tell which one matched.
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, got) || ok;
    return ok;
  };
}

export function authHook(tokens: readonly string[]) {
  const check = tokenChecker(tokens);
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (check(request.headers.authorization)) return;
    reply.header('www-authenticate', 'Bearer realm="query"');
    throw new QueryError(QUERY_UNAUTHORIZED, 401, 'a valid bearer token is required (QUERY_TOKENS is set)');
  };
}
