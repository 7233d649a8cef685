/**
 * Measures the distinct-count sketches available on the target server: relative error against
 * uniqExact and serialized state size, for sets of several sizes, each built as one state and as a
 * merge of 720 partial states (30 days x 24 hourly buckets, how the rollups are read). The numbers
 * in clickhouse/README.md come from `node bench/measure-sketches.ts` on the local 18.16.
 *
 * Usage: node bench/measure-sketches.ts [--trials 5]   (CLICKHOUSE_URL as for the migrator)
 */
import { createClickHouse } from '../services/lib/clickhouse.ts';
import { readConfig, url } from '../services/lib/config.ts';

const FUNCTIONS = ['uniq', 'uniqCombined', 'uniqHLL12', 'uniqExact'] as const;
const SIZES = [1_000, 10_000, 100_000, 1_000_000] as const;

const cfg = readConfig({ CLICKHOUSE_URL: url('ClickHouse HTTP URL', 'http://127.0.0.1:8123') }, process.env);
const trialsArg = process.argv.indexOf('--trials');
const trials = trialsArg > 0 ? Number(process.argv[trialsArg + 1]) : 5;
const client = createClickHouse({ url: cfg.CLICKHOUSE_URL, requestTimeoutMs: 300_000 });

async function scalar(query: string): Promise<number> {
  const rs = await client.query({ query, format: 'JSONEachRow' });
  const [row] = await rs.json<{ v: string | number }>();
  return Number(row?.v);
}

async function stateBytes(fn: string, n: number, salt: number): Promise<number> {
  // exec, not query: the client would append its own FORMAT clause.
  const { stream } = await client.exec({
    query: `SELECT ${fn}State(sipHash64(number, ${salt})) FROM numbers(${n}) FORMAT RowBinary`,
  });
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

const out: string[] = [
  '| sketch | distinct n | max rel. error (1 state) | max rel. error (720 merged) | state bytes |',
  '| --- | --- | --- | --- | --- |',
];
for (const fn of FUNCTIONS) {
  for (const n of SIZES) {
    let worstOne = 0;
    let worstMerged = 0;
    let bytes = 0;
    for (let salt = 1; salt <= trials; salt++) {
      const key = `sipHash64(number, ${salt})`;
      const one = await scalar(`SELECT ${fn}(${key}) AS v FROM numbers(${n})`);
      const merged = await scalar(
        `SELECT ${fn}Merge(s) AS v FROM (SELECT ${fn}State(${key}) AS s FROM numbers(${n}) GROUP BY number % 720)`,
      );
      worstOne = Math.max(worstOne, Math.abs(one - n) / n);
      worstMerged = Math.max(worstMerged, Math.abs(merged - n) / n);
      bytes = Math.max(bytes, await stateBytes(fn, n, salt));
    }
    out.push(
      `| ${fn} | ${n} | ${(worstOne * 100).toFixed(3)}% | ${(worstMerged * 100).toFixed(3)}% | ${bytes} |`,
    );
  }
}
const rs = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
const [ver] = await rs.json<{ v: string }>();
process.stdout.write(
  `ClickHouse ${ver?.v}, ${trials} trials per cell (different hash salts)\n${out.join('\n')}\n`,
);
await client.close();
