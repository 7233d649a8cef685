/**
 * dim_dates generator. Calendar columns are computed here (ISO weekday and week, quarter, ...) and
 * holidays come from the date-holidays package (public and bank holidays of one country), so no
 * date is typed by hand. The migrator calls populateDimDates after the SQL migrations; it inserts
 * only when the table does not already hold the full range for that country, so re-runs are no-ops.
 */
import Holidays from 'date-holidays';
import type { ClickHouseClient } from '../clickhouse.ts';
import { DATAMODEL_CODES } from '../error-codes.ts';
import { PipelineError } from '../errors.ts';
import { DAY_MS } from '../time.ts';

export interface DimDateRow {
  readonly date_key: number;
  readonly full_date: string;
  readonly day_of_week: number;
  readonly day_of_month: number;
  readonly day_of_year: number;
  readonly week_of_year: number;
  readonly iso_year: number;
  readonly week_start: string;
  readonly month_number: number;
  readonly quarter: number;
  readonly year: number;
  readonly is_weekend: number;
  readonly is_holiday: number;
  readonly holiday_name: string;
  readonly holiday_country: string;
}

export const DIM_DATES_FROM = '2000-01-01';
export const DIM_DATES_TO = '2040-12-31';

const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Rows for every day in [from, to] (YYYY-MM-DD, inclusive). */
export function dimDateRows(from: string, to: string, country: string): DimDateRow[] {
  const hd = new Holidays();
  if (!(country in hd.getCountries()))
    throw new PipelineError(DATAMODEL_CODES.dimDatesBadCountry, `unknown holiday country ${country}`);
  hd.init(country);
  const names = new Map<string, string[]>();
  const fromMs = Date.parse(`${from}T00:00:00Z`);
  const toMs = Date.parse(`${to}T00:00:00Z`);
  for (let y = new Date(fromMs).getUTCFullYear(); y <= new Date(toMs).getUTCFullYear(); y++) {
    for (const h of hd.getHolidays(y)) {
      if (h.type !== 'public' && h.type !== 'bank') continue;
      const day = h.date.slice(0, 10);
      names.set(day, [...(names.get(day) ?? []), h.name]);
    }
  }
  const rows: DimDateRow[] = [];
  for (let ms = fromMs; ms <= toMs; ms += DAY_MS) {
    const d = new Date(ms);
    const year = d.getUTCFullYear();
    const month = d.getUTCMonth() + 1;
    const dow = ((d.getUTCDay() + 6) % 7) + 1; // ISO: Monday = 1 .. Sunday = 7
    const weekStart = ms - (dow - 1) * DAY_MS;
    // ISO week: the week belongs to the year of its Thursday; week 1 holds that year's 4 January.
    const thursday = new Date(weekStart + 3 * DAY_MS);
    const isoYear = thursday.getUTCFullYear();
    const week = Math.floor((thursday.getTime() - Date.UTC(isoYear, 0, 1)) / (7 * DAY_MS)) + 1;
    const day = iso(ms);
    const holiday = names.get(day);
    rows.push({
      date_key: year * 10_000 + month * 100 + d.getUTCDate(),
      full_date: day,
      day_of_week: dow,
      day_of_month: d.getUTCDate(),
      day_of_year: Math.floor((ms - Date.UTC(year, 0, 1)) / DAY_MS) + 1,
      week_of_year: week,
      iso_year: isoYear,
      week_start: iso(weekStart),
      month_number: month,
      quarter: Math.ceil(month / 3),
      year,
      is_weekend: dow >= 6 ? 1 : 0,
      is_holiday: holiday ? 1 : 0,
      holiday_name: holiday ? [...new Set(holiday)].join('; ') : '',
      holiday_country: country,
    });
  }
  return rows;
}

export async function populateDimDates(
  client: ClickHouseClient,
  o: { from?: string; to?: string; country?: string } = {},
): Promise<{ inserted: number }> {
  const from = o.from ?? DIM_DATES_FROM;
  const to = o.to ?? DIM_DATES_TO;
  const country = o.country ?? 'US';
  const rows = dimDateRows(from, to, country);
  const first = rows[0]?.date_key ?? 0;
  const last = rows.at(-1)?.date_key ?? 0;
  const rs = await client.query({
    query: `SELECT count() AS n FROM dim_dates FINAL
      WHERE date_key BETWEEN ${first} AND ${last} AND holiday_country = '${country.replace(/[^A-Za-z-]/g, '')}'`,
    format: 'JSONEachRow',
  });
  const [have] = await rs.json<{ n: string }>();
  if (Number(have?.n) === rows.length) return { inserted: 0 };
  await client.insert({ table: 'dim_dates', format: 'JSONEachRow', values: rows });
  return { inserted: rows.length };
}
