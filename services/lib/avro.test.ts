import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AvroCodec, DEFAULT_SCHEMAS_DIR } from './avro.ts';

const FIXTURES = new URL('../../schemas/fixtures/evolution/', import.meta.url).pathname;

describe('schemas/ evolution', () => {
  const codec = new AvroCodec();
  const ids = codec.ids();

  it('loads every schema file', () => {
    const files = readdirSync(DEFAULT_SCHEMAS_DIR).filter((f) => f.endsWith('.avsc'));
    expect(ids).toHaveLength(files.length);
    expect(ids).toEqual(expect.arrayContaining(['user_activity.v1', 'user_identify.v1']));
  });

  it('resolves every writer/reader pair of a family in both directions', () => {
    const family = (id: string): string => id.replace(/\.v\d+$/, '');
    for (const writer of ids) {
      for (const reader of ids.filter((r) => family(r) === family(writer))) {
        expect(
          () => codec.type(reader).createResolver(codec.type(writer)),
          `${writer} -> ${reader}`,
        ).not.toThrow();
      }
    }
  });
});

describe('AvroCodec resolution', () => {
  const codec = new AvroCodec(FIXTURES);

  it('writes with the newest version and names it', () => {
    expect(codec.writerId('user_activity')).toBe('user_activity.v2');
  });

  it('decodes an old writer into the new reader with the defaults of added fields', () => {
    const old = codec
      .type('user_activity.v1')
      .toBuffer({ event_id: 'e1', activity_name: 'login', user_id: 'u1' });
    expect(codec.decode('user_activity.v1', old)).toEqual({
      family: 'user_activity',
      value: expect.objectContaining({
        event_id: 'e1',
        activity_name: 'login',
        user_id: 'u1',
        referrer: null,
        is_internal: false,
      }),
    });
  });

  it('classifies unknown schemas and garbage as data errors', () => {
    expect(() => codec.decode('user_activity.v9', Buffer.from([1]))).toThrow(
      expect.objectContaining({ code: 'AVRO_UNKNOWN_SCHEMA' }),
    );
    expect(() => codec.decode('user_activity.v1', Buffer.from([0xff, 0xff, 0xff]))).toThrow(
      expect.objectContaining({ code: 'AVRO_UNDECODABLE' }),
    );
  });

  it('rejects a record that does not match, naming the field', () => {
    expect(() => codec.encode('user_activity', { event_id: 'e1', activity_name: 7 })).toThrow(
      /activity_name/,
    );
  });
});

describe('AvroCodec.encode', () => {
  const codec = new AvroCodec(FIXTURES);
  const type = codec.type('user_activity.v2');
  const record = (id: string, size: number) =>
    type.clone({ event_id: id, activity_name: 'x'.repeat(size), user_id: 'u1' }, { wrapUnions: false });

  it('writes the bytes toBuffer writes, messages independent of one another, past the scratch size', () => {
    const small = codec.encode('user_activity', record('e1', 10));
    const large = codec.encode('user_activity', record('e2', 100_000));
    const after = codec.encode('user_activity', record('e3', 20));
    expect(small.equals(type.toBuffer(record('e1', 10)))).toBe(true);
    expect(large.equals(type.toBuffer(record('e2', 100_000)))).toBe(true);
    expect(after.equals(type.toBuffer(record('e3', 20)))).toBe(true);
    expect(codec.decode('user_activity.v2', small).value.event_id).toBe('e1');
  });
});
