import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { AVRO_CODES } from './error-codes.ts';
import { PipelineError } from './errors.ts';

/**
 * Avro codec for the event contract in schemas/. Every Kafka message carries the id of the schema it
 * was written with in the `SCHEMA_HEADER` header (`user_activity.v1`); a reader decodes with the
 * newest version of the same family, resolving writer -> reader, so old and new producers coexist.
 */
export const SCHEMA_HEADER = 'schema';

export type SchemaFamily = 'user_activity' | 'user_identify';

interface Version {
  readonly id: string;
  readonly family: string;
  readonly version: number;
  readonly type: avro.Type;
}

const FILE_RE = /^([a-z_]+)\.v(\d+)\.avsc$/;

export const DEFAULT_SCHEMAS_DIR = new URL('../../schemas/', import.meta.url).pathname;

export class AvroCodec {
  private readonly versions = new Map<string, Version>();
  private readonly latest = new Map<string, Version>();
  private readonly resolvers = new Map<string, avro.Resolver>();
  /** Encoding scratch space, grown to the largest record seen. */
  private scratch = Buffer.allocUnsafe(16 * 1024);

  constructor(schemasDir: string = DEFAULT_SCHEMAS_DIR) {
    for (const file of readdirSync(schemasDir).sort()) {
      const m = FILE_RE.exec(file);
      if (!m) continue;
      const [, family = '', num = ''] = m;
      const schema = JSON.parse(readFileSync(join(schemasDir, file), 'utf8')) as avro.Schema;
      const v: Version = {
        id: `${family}.v${num}`,
        family,
        version: Number(num),
        type: avro.Type.forSchema(schema),
      };
      this.versions.set(v.id, v);
      const cur = this.latest.get(family);
      if (!cur || cur.version < v.version) this.latest.set(family, v);
    }
  }

  /** The schema id new messages of a family are written with (its newest version). */
  writerId(family: SchemaFamily): string {
    return this.newest(family).id;
  }

  /** All known schema ids, oldest first within a family. */
  ids(): string[] {
    return [...this.versions.keys()];
  }

  type(id: string): avro.Type {
    const v = this.versions.get(id);
    if (!v) throw new PipelineError(AVRO_CODES.unknownSchema, `unknown schema id ${JSON.stringify(id)}`);
    return v.type;
  }

  /** Encodes with the newest version of the family; throws AVRO_INVALID_RECORD naming the bad paths. */
  encode(family: SchemaFamily, record: unknown): Buffer {
    const { type } = this.newest(family);
    const bad: string[] = [];
    if (!type.isValid(record, { errorHook: (path) => bad.push(path.join('.')) })) {
      throw new PipelineError(AVRO_CODES.invalidRecord, `record does not match ${family}: ${bad.join(', ')}`);
    }
    // type.toBuffer() copies each message into a zero-filled Buffer.alloc(): one ArrayBuffer per
    // event. Encoding into scratch space and copying into allocUnsafe() (Node's shared pool for
    // small sizes) gives the same bytes without it.
    let end = type.encode(record, this.scratch, 0);
    if (end < 0) {
      this.scratch = Buffer.allocUnsafe(2 * (this.scratch.length - end));
      end = type.encode(record, this.scratch, 0);
    }
    const out = Buffer.allocUnsafe(end);
    this.scratch.copy(out, 0, 0, end);
    return out;
  }

  /**
   * Decodes a message written with schema `writerId` into the newest reader of its family. Throws
   * AVRO_UNKNOWN_SCHEMA or AVRO_UNDECODABLE: data problems a consumer dead-letters, never retries.
   */
  decode(writerId: string, buf: Buffer): { family: string; value: Record<string, unknown> } {
    const writer = this.versions.get(writerId);
    if (!writer)
      throw new PipelineError(AVRO_CODES.unknownSchema, `unknown schema id ${JSON.stringify(writerId)}`);
    const reader = this.newest(writer.family);
    try {
      if (reader === writer) return { family: writer.family, value: reader.type.fromBuffer(buf) };
      let resolver = this.resolvers.get(writerId);
      if (!resolver) {
        resolver = reader.type.createResolver(writer.type);
        this.resolvers.set(writerId, resolver);
      }
      return { family: writer.family, value: reader.type.fromBuffer(buf, resolver) };
    } catch (cause) {
      throw new PipelineError(
        AVRO_CODES.undecodable,
        `cannot decode ${writerId} message: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
  }

  private newest(family: string): Version {
    const v = this.latest.get(family);
    if (!v) throw new PipelineError(AVRO_CODES.unknownSchema, `no schema for family ${family}`);
    return v;
  }
}
