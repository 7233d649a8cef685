/**
 * A PostHog capture body's bytes -> JSON. posthog-js sends one of three encodings, none of them
 * declared in a way the app's body parsing (http/body.ts) can read:
 * - gzip (`compression: gzip-js`, its default once the project config says so): gzip bytes
 *   declared as text/plain, with no Content-Encoding and, in 1.4xx, no `compression` query
 *   parameter either, so gzip is recognized by its magic bytes;
 * - base64 (`?compression=base64`, sendBeacon's fallback): a form body `data=<base64 of JSON>`;
 * - none: JSON (or, from older versions, a form body `data=<JSON>`).
 * posthog-node's `Content-Encoding: gzip` body arrives here already inflated by the app's parsing.
 */
import { gunzipSync } from 'node:zlib';
import { COLLECTOR_ERRORS } from '../../lib/error-codes.ts';
import { parseJsonBody } from '../http/body.ts';

const COMPRESSIONS = ['gzip-js', 'gzip', 'base64'] as const;

const isGzip = (b: Buffer): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/**
 * Decodes a capture body. `compression` is the request's query parameter; inflation stops at
 * `maxBytes` (the decompressed body limit), so a small gzip body cannot expand past it.
 */
export function decodeCaptureBody(body: Buffer, compression: string | undefined, maxBytes: number): unknown {
  const mode = compression?.toLowerCase() ?? '';
  if (mode !== '' && !(COMPRESSIONS as readonly string[]).includes(mode))
    throw COLLECTOR_ERRORS.unsupportedCompression(String(compression), COMPRESSIONS.join(', '));
  if (mode === 'gzip-js' || mode === 'gzip' || isGzip(body)) {
    let inflated: Buffer;
    try {
      inflated = gunzipSync(body, { maxOutputLength: maxBytes });
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
        throw COLLECTOR_ERRORS.bodyTooLarge(`body inflates past ${maxBytes} bytes`, { cause });
      throw COLLECTOR_ERRORS.bodyMalformed('body is not valid gzip', { cause });
    }
    return parseJsonBody(inflated);
  }
  if (mode === 'base64' || body.toString('latin1', 0, 5) === 'data=') {
    const data = new URLSearchParams(body.toString('latin1')).get('data');
    if (data === null) throw COLLECTOR_ERRORS.bodyMalformed('form body has no data field');
    // base64 only when declared: an undeclared `data=` form carries JSON (older posthog-js).
    // URLSearchParams reads an unescaped '+' as a space; base64 has no spaces.
    return mode === 'base64'
      ? parseJsonBody(Buffer.from(data.replaceAll(' ', '+'), 'base64'))
      : parseJsonBody(Buffer.from(data, 'utf8'));
  }
  return parseJsonBody(body);
}
