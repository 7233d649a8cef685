/**
 * Write-key authentication. A key is accepted as `Authorization: Bearer <key>`, as HTTP Basic with
 * the key as the user name (Segment's SDKs), or as a `writeKey` field of the JSON body (browsers
 * using navigator.sendBeacon cannot set headers) or its `api_key` field (Amplitude's SDKs send no
 * header at all). The key maps to the source name events carry.
 */
import type { FastifyRequest } from 'fastify';
import { COLLECTOR_ERRORS } from '../../lib/error-codes.ts';
import { isPlainObject } from '../validation/validate.ts';
import type { WriteKey, WriteKeys } from './write-keys.ts';

export function writeKeyOf(req: Pick<FastifyRequest, 'headers' | 'body'>): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const [scheme = '', value = ''] = header.trim().split(/\s+/, 2);
    if (scheme.toLowerCase() === 'bearer') return value;
    if (scheme.toLowerCase() === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon === -1 ? decoded : decoded.slice(0, colon);
    }
  }
  const body = req.body;
  if (!isPlainObject(body)) return undefined;
  if (typeof body.writeKey === 'string') return body.writeKey;
  return typeof body.api_key === 'string' ? body.api_key : undefined;
}

/** What a request's write key (writeKeyOf) may do; throws 401 for a missing or unknown key. */
export function authenticate(key: string | undefined, keys: WriteKeys): WriteKey {
  if (key === undefined || key === '') {
    throw COLLECTOR_ERRORS.unauthorized(
      'missing write key (Authorization: Bearer <key>, Basic, writeKey or api_key)',
    );
  }
  const found = keys.get(key);
  if (found === undefined) throw COLLECTOR_ERRORS.unauthorized('unknown write key');
  return found;
}
