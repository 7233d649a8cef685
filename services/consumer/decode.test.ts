import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { activity, codec, encoded, identify } from '../../test/fixtures/records.ts';
import { AvroCodec, DEFAULT_SCHEMAS_DIR, SCHEMA_HEADER } from '../lib/avro.ts';
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

describe('the contract on old or foreign messages', () => {
  it('counts an event without a feature (NO_FEATURE), never dead-letters it', () => {
    const d = decodeMessage(codec, fromRecord('user_activity', activity({ user_id: 'u', feature_name: '' })));
    expect(d).toMatchObject({ kind: 'activity', record: { feature_name: '' } });
  });

  it('drops an optional time or date outside the contract instead of the event', () => {
    const d = decodeMessage(
      codec,
      fromRecord(
        'user_activity',
        activity({
          user_id: 'u',
          sent_at: -62_135_596_800_000,
          registration_date: 9e15,
          birth_date: -700_000,
        }),
      ),
    );
    expect(d).toMatchObject({
      kind: 'activity',
      record: { sent_at: null, registration_date: null, birth_date: null },
    });
  });
});

describe('schema evolution', () => {
  it('decodes messages of an old producer (v1) and a new one (v2) with the newest reader', () => {
    // A v2 that adds a field with a default, as schemas/README.md allows.
    const dir = mkdtempSync(join(tmpdir(), 'schemas-'));
    try {
      for (const f of ['user_activity.v1.avsc', 'user_identify.v1.avsc']) {
        copyFileSync(join(DEFAULT_SCHEMAS_DIR, f), join(dir, f));
      }
      const v1 = JSON.parse(readFileSync(join(DEFAULT_SCHEMAS_DIR, 'user_activity.v1.avsc'), 'utf8'));
      v1.fields.push({ name: 'experiment', type: ['null', 'string'], default: null });
      writeFileSync(join(dir, 'user_activity.v2.avsc'), JSON.stringify(v1));
      const evolved = new AvroCodec(dir);
      const old = activity({ user_id: 'u' });
      const oldMsg = msg(evolved.type('user_activity.v1').toBuffer(old), {
        [SCHEMA_HEADER]: 'user_activity.v1',
      });
      const fresh = activity({ user_id: 'u', experiment: 'b' });
      const newMsg = msg(evolved.encode('user_activity', fresh), {
        [SCHEMA_HEADER]: evolved.writerId('user_activity'),
      });

      const a = decodeMessage(evolved, oldMsg);
      const b = decodeMessage(evolved, newMsg);
      expect(a).toMatchObject({ kind: 'activity', record: { event_id: old.event_id, experiment: null } });
      expect(b).toMatchObject({ kind: 'activity', record: { event_id: fresh.event_id, experiment: 'b' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
