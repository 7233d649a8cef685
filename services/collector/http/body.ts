/**
 * Request bodies: JSON, whatever content type is declared (navigator.sendBeacon sends text/plain so
 * it needs no CORS preflight; some SDKs declare form encoding or nothing), optionally gzip- or
 * deflate-encoded. The body limit counts decompressed bytes
 * (fastify counts what the preParsing stream yields), so a gzip bomb stops at the limit.
 * Invalid UTF-8 is an error rather than silently replaced characters. Prototype-polluting keys are
 * left to per-event validation (validation/validate.ts rejects the event that carries them), so
 * one poisoned event does not cost its batch-mates; JSON.parse itself only creates own properties.
 */
import { createGunzip, createInflate } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { COLLECTOR_ERRORS } from '../../lib/error-codes.ts';
import type { HttpError } from '../../lib/errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Bytes of the (decompressed) body its JSON was parsed from; 0 before parsing. */
    bodyBytes: number;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function parseJsonBody(body: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch (cause) {
    throw COLLECTOR_ERRORS.bodyInvalidUtf8({ cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw COLLECTOR_ERRORS.bodyMalformed(`body is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

interface CountingStream extends NodeJS.ReadableStream {
  /** Read by fastify to compare the encoded size with Content-Length. */
  receivedEncodedLength: number;
}

export const bodyParsing = fp(
  async (app: FastifyInstance) => {
    // JSON whatever the declared type: SDKs in the wild send it as application/json, text/plain
    // (sendBeacon), application/x-www-form-urlencoded (RudderStack's Node SDK, gzipped) or with
    // no type at all, and their own servers take it. A body that is not JSON is still a 400.
    app.removeContentTypeParser(['application/json', 'text/plain']);
    app.decorateRequest('bodyBytes', 0);
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
      try {
        req.bodyBytes = (body as Buffer).length;
        done(null, parseJsonBody(body as Buffer));
      } catch (err) {
        done(err as HttpError, undefined);
      }
    });
    app.addHook('preParsing', async (req, _reply, payload) => {
      const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (encoding === 'identity' || encoding === '') return payload;
      const inflate =
        encoding === 'gzip' || encoding === 'x-gzip'
          ? createGunzip()
          : encoding === 'deflate'
            ? createInflate()
            : undefined;
      if (inflate === undefined) {
        throw COLLECTOR_ERRORS.unsupportedEncoding(encoding);
      }
      const out = inflate as unknown as CountingStream;
      out.receivedEncodedLength = 0;
      payload.on('data', (chunk: Buffer) => {
        out.receivedEncodedLength += chunk.length;
      });
      payload.on('error', (err) => inflate.destroy(err));
      payload.pipe(inflate);
      return out;
    });
  },
  { name: 'collector-body-parsing' },
);
