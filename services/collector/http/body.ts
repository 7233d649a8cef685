/**
 * Request bodies: JSON, whatever content type is declared (navigator.sendBeacon sends text/plain so
 * it needs no CORS preflight; some SDKs declare form encoding or nothing), optionally gzip- or
 * deflate-encoded. The body limit counts decompressed bytes
 * (fastify counts what the preParsing stream yields), so a gzip bomb stops at the limit.
 * Invalid UTF-8 is an error rather than silently replaced characters. Prototype-polluting keys are
 * left to per-event validation (validation/validate.ts rejects the event that carries them), so
 * one poisoned event does not cost its batch-mates; JSON.parse itself only creates own properties.
 */
import type { Transform } from 'node:stream';
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

/** The inflating stream, as fastify reads it. */
type CountingStream = Transform & {
  /** Read by fastify to compare the encoded size with Content-Length. */
  receivedEncodedLength?: number;
};

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
    // A callback hook: an async one costs every request a promise and a microtask.
    app.addHook('preParsing', (req, _reply, payload, done) => {
      const declared = req.headers['content-encoding'];
      if (declared === undefined) {
        done(null, payload);
        return;
      }
      const encoding = declared.trim().toLowerCase();
      if (encoding === 'identity' || encoding === '') {
        done(null, payload);
        return;
      }
      const inflate =
        encoding === 'gzip' || encoding === 'x-gzip'
          ? createGunzip()
          : encoding === 'deflate'
            ? createInflate()
            : undefined;
      if (inflate === undefined) {
        done(COLLECTOR_ERRORS.unsupportedEncoding(encoding));
        return;
      }
      const out: CountingStream = inflate;
      let received = 0;
      payload.on('data', (chunk: Buffer) => {
        received += chunk.length;
        out.receivedEncodedLength = received;
      });
      payload.on('error', (err) => inflate.destroy(err));
      payload.pipe(inflate);
      done(null, out);
    });
  },
  { name: 'collector-body-parsing' },
);
