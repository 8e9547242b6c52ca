/**
 * ISO-8601 dates and date-times as Segment's libraries send them: `2024-05-01`,
 * `2024-05-01T12:30:00Z`, `2024-05-01 12:30:00.123+02:00`, `…+0200`. The forms are
 * those Date.parse took before this parser (no `,` fraction, no hour-only offset), and
 * at most nanoseconds: PostgreSQL refuses a longer fraction.
 * Captures: year, month, day, hour, minute, second, fraction, offset sign, hours, minutes.
 */
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|([+-])(\d{2}):?(\d{2}))?)?$/i;
/** The widest offset in use (UTC+14); PostgreSQL refuses past 15:59. */
const MAX_OFFSET_HOURS = 14;

/** The first and last instants a stored timestamp may hold (years 1970 to 9999, UTC). */
export const EARLIEST_TIME = Date.UTC(1970, 0, 1);
export const LATEST_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysIn(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!;
}

/**
 * The instant (ms since the epoch) an ISO-8601 date or date-time names, or undefined
 * when it is not one or is not a real calendar date in the years 1970–9999
 * (`2020-02-30`, `2021-02-29`, `0000-01-01`, hour 24, minute 60, offset +15:00 are
 * not). A time
 * without an offset is UTC, whatever the server's time zone. Date.parse is not used:
 * it rolls impossible dates over and takes a local time for offset-less date-times.
 */
export function parseIsoTime(value: string): number | undefined {
  const m = ISO_8601.exec(value);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4] ?? 0);
  const minute = Number(m[5] ?? 0);
  const second = Number(m[6] ?? 0);
  const offsetHours = Number(m[9] ?? 0);
  const offsetMinutes = Number(m[10] ?? 0);
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) {
    return undefined;
  }
  if (
    hour > 23 ||
    minute > 59 ||
    second > 59 ||
    offsetHours > MAX_OFFSET_HOURS ||
    offsetMinutes > 59
  ) {
    return undefined;
  }
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, "0")) : 0;
  const offset = (m[8] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offset;
}

/** Whether `value` is an ISO-8601 date or date-time on a real calendar day in 1970–9999. */
export function isIsoDate(value: string): boolean {
  return parseIsoTime(value) !== undefined;
}

/** Whether an instant can be stored as a four-digit-year ISO timestamp (1970–9999). */
export function inStorableRange(ms: number): boolean {
  return ms >= EARLIEST_TIME && ms <= LATEST_TIME;
}
