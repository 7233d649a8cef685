import { describe, expect, it } from 'vitest';
import { activity, codec, encoded, identify } from '../../test/harness/consumer-process.ts';
import { SCHEMA_HEADER } from '../lib/avro.ts';
import type { ConsumedMessage } from '../lib/kafka-consumer.ts';
import { decodeMessage } from './decode.ts';

function msg(value: Buffer | null, headers: Record<string, string>): ConsumedMessage {
  return { offset: '0', key: null, value, headers, timestamp: '0' };
}
const fromRecord = (
  family: 'user_activity' | 'user_identify',
  r: Record<string, unknown>,
): ConsumedMessage => {
  const e = encoded(family, r);
  return msg(e.value, e.headers);
};

describe('decodeMessage', () => {
  it('decodes activity and identify records', () => {
    expect(decodeMessage(codec, fromRecord('user_activity', activity({ user_id: 'u' }))).kind).toBe(
      'activity',
    );
    expect(decodeMessage(codec, fromRecord('user_identify', identify({ user_id: 'u' }))).kind).toBe(
      'identify',
    );
  });

  it.each([
    ['empty_value', msg(null, { [SCHEMA_HEADER]: 'user_activity.v1' })],
    ['missing_schema_header', msg(Buffer.from([1]), {})],
    ['unknown_schema', msg(Buffer.from([1]), { [SCHEMA_HEADER]: 'user_activity.v99' })],
    ['undecodable', msg(Buffer.from([0xff, 0xff, 0xff]), { [SCHEMA_HEADER]: 'user_activity.v1' })],
    ['invalid_content', fromRecord('user_activity', activity({ user_id: 'u', event_id: 'nope' }))],
    ['invalid_content', fromRecord('user_activity', activity({ user_id: null, anonymous_id: null }))],
    ['invalid_content', fromRecord('user_activity', activity({ user_id: 'u', activity_timestamp: 1_000 }))],
    ['invalid_content', fromRecord('user_identify', identify({ user_id: '' }))],
  ])('dead-letters %s as a value, never throws', (reason, m) => {
    expect(decodeMessage(codec, m)).toMatchObject({ kind: 'poison', reason });
  });
});
