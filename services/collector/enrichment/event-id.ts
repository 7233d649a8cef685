/**
 * Deterministic event ids. event_id is the data model's dedup key, so an id that a retry would
 * reproduce makes the retry harmless: the sender's own id when it gave one, else a name-based UUID
 * (RFC 9562 v5 layout over SHA-1) of something the retry repeats.
 */
import { hash } from 'node:crypto';

/** A UUID named by `parts` within `namespace` (the same inputs give the same id, always). */
export function nameUuid(namespace: string, ...parts: readonly string[]): string {
  // NUL-separated: parts are JSON or ids, so ("ab", "c") and ("a", "bc") cannot collide. One part
  // hashes exactly as namespace + part, the scheme Segment message ids have always been mapped by.
  // One-shot hash(): a createHash() object per event was 12% of the collector's CPU at its maximum
  // (bench scenario 7's profile); the digest is the same.
  const h = hash('sha1', namespace + parts.join('\u0000'), 'buffer');
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * The id of an event sent without one, derived from its content, so an SDK that retries a request
 * after a 503 whose publish did in fact succeed (or after a lost response) is not counted twice.
 *
 * Only when the content pins the event in time (its own `timestamp`, or the request's `sent_at`):
 * without either, two identical events sent a minute apart (a heartbeat without a timestamp) are
 * different events that the content cannot tell apart, so they get random ids (undefined here).
 * Identical events with the same client timestamp in one source are one event by this rule.
 */
export function contentEventId(
  source: string,
  input: unknown,
  sentAt: number | undefined,
): string | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  const timestamp = (input as Record<string, unknown>).timestamp;
  if (typeof timestamp !== 'string' && sentAt === undefined) return undefined;
  return nameUuid('event-content', source, String(sentAt ?? ''), JSON.stringify(input));
}
