import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeCaptureBody } from './body.ts';

const BODY = { api_key: 'k', batch: [{ event: 'café', distinct_id: 'u' }], sent_at: '2026-01-01T00:00:00Z' };
const text = JSON.stringify(BODY);

describe('decodeCaptureBody', () => {
  it('reads JSON, gzip with or without ?compression=gzip-js, and base64 or JSON forms', () => {
    expect(decodeCaptureBody(Buffer.from(text), undefined, 1e6)).toEqual(BODY);
    expect(decodeCaptureBody(gzipSync(text), 'gzip-js', 1e6)).toEqual(BODY);
    // posthog-js 1.4xx sends gzip as text/plain without the parameter.
    expect(decodeCaptureBody(gzipSync(text), undefined, 1e6)).toEqual(BODY);
    const b64 = Buffer.from(text).toString('base64');
    expect(decodeCaptureBody(Buffer.from(`data=${encodeURIComponent(b64)}`), 'base64', 1e6)).toEqual(BODY);
    // An unescaped '+' of the base64 alphabet reads as a space in a form: it must survive.
    const plus = Buffer.from(JSON.stringify({ x: '>>>?' })).toString('base64');
    expect(plus).toContain('+');
    expect(decodeCaptureBody(Buffer.from(`data=${plus}`), 'base64', 1e6)).toEqual({ x: '>>>?' });
    expect(decodeCaptureBody(Buffer.from(`data=${encodeURIComponent(text)}`), undefined, 1e6)).toEqual(BODY);
  });

  it('stops inflating at the limit (413) and refuses unknown compression and bad bytes (400)', () => {
    const bomb = gzipSync(Buffer.alloc(100_000, 0x20));
    expect(() => decodeCaptureBody(bomb, undefined, 10_000)).toThrow(
      expect.objectContaining({ statusCode: 413, code: 'COLLECTOR_BODY_TOO_LARGE' }),
    );
    expect(() => decodeCaptureBody(Buffer.from(text), 'lz64', 1e6)).toThrow(
      expect.objectContaining({ statusCode: 400, code: 'COLLECTOR_UNSUPPORTED_COMPRESSION' }),
    );
    expect(() => decodeCaptureBody(Buffer.from('{'), undefined, 1e6)).toThrow(
      expect.objectContaining({ statusCode: 400, code: 'COLLECTOR_BODY_MALFORMED' }),
    );
    expect(() => decodeCaptureBody(Buffer.from([0x1f, 0x8b, 0]), undefined, 1e6)).toThrow(/not valid gzip/);
    expect(() => decodeCaptureBody(Buffer.from('data2=x'), 'base64', 1e6)).toThrow(/no data field/);
  });
});
