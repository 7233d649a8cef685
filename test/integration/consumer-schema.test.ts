/**
 * The consumer's one list of ClickHouse columns (services/consumer/schema.ts) against the tables the
 * migrations create, through a real DESCRIBE: every column the row builder writes exists with its
 * type, and the ingest tables have no column the row builder leaves to its default. A drifted table
 * is reported, column by column.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPECTED_COLUMNS, INGEST_TABLES, schemaProblems } from '../../services/consumer/schema.ts';
import { migrated } from '../harness/consumer-process.ts';
import { freshDatabase, type TestDatabase } from '../harness/services.ts';

describe('consumer schema check', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await freshDatabase('consumer_schema');
    await migrated(db.client, db.name);
  });

  afterAll(async () => {
    await db?.drop();
  });

  async function describeTable(table: string): Promise<Record<string, string>> {
    const rs = await db.client.query({ query: `DESCRIBE TABLE ${table}`, format: 'JSONEachRow' });
    const rows = await rs.json<{ name: string; type: string }>();
    return Object.fromEntries(rows.map((r) => [r.name, r.type]));
  }

  it.each(Object.values(INGEST_TABLES))(
    '%s has exactly the columns and types the row builder writes',
    async (table) => {
      expect(await describeTable(table)).toEqual(EXPECTED_COLUMNS[table]);
    },
  );

  it('dim_users has the columns and types the profile look-up reads', async () => {
    const actual = await describeTable('dim_users');
    expect(actual).toMatchObject(EXPECTED_COLUMNS.dim_users ?? {});
  });

  it('finds nothing wrong with the migrated database', async () => {
    expect(await schemaProblems(db.client)).toEqual([]);
  });

  it('reports a missing column and a retyped one', async () => {
    const drifted = await freshDatabase('consumer_schema_drift');
    try {
      await drifted.client.command({
        query: `CREATE TABLE ${INGEST_TABLES.identify} (event_id String, received_at Int32) ENGINE = Null`,
      });
      const problems = await schemaProblems(drifted.client, [INGEST_TABLES.identify]);
      expect(problems).toContain(`${INGEST_TABLES.identify}.received_at is Int32, expected UInt64`);
      expect(problems).toContain(`${INGEST_TABLES.identify}.kind is missing (expected String)`);
      expect(problems.some((p) => p.startsWith(`${INGEST_TABLES.identify}.event_id`))).toBe(false);
    } finally {
      await drifted.drop();
    }
  });
});
