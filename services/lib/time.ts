/** Durations in milliseconds, named once. UTC days: every day in this pipeline is 86 400 000 ms. */
export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
