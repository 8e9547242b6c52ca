import { expect, test } from "bun:test";
import { isIsoDate, parseIsoTime } from "../../src/events/time.ts";

/**
 * The parser as it was written before (a regex, then the same range checks): the
 * character-by-character one must agree with it on every input.
 */
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|([+-])(\d{2}):?(\d{2}))?)?$/i;
function reference(value: string): number | undefined {
  const m = ISO_8601.exec(value);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const [hour, minute, second] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  const [offsetHours, offsetMinutes] = [Number(m[9] ?? 0), Number(m[10] ?? 0)];
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > days) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 14 || offsetMinutes > 59) {
    return undefined;
  }
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, "0")) : 0;
  const offset = (m[8] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offset;
}

const SEEDS = [
  "2024-05-01",
  "2024-05-01T12:30",
  "2024-05-01T12:30Z",
  "2024-05-01T12:30:00Z",
  "2024-05-01t12:30:00z",
  "2024-05-01 12:30:00.123+02:00",
  "2024-05-01T12:30:00.1-0530",
  "2024-05-01T12:30:00.12+14:00",
  "2024-05-01T12:30:00.123456789+02:00",
  "2024-05-01T12:30:00.1234567890Z",
  "2024-02-29T00:00:00Z",
  "2023-02-29T00:00:00Z",
  "2020-02-30",
  "0000-01-01",
  "1969-12-31T23:59:59.999Z",
  "1970-01-01T00:00:00.000Z",
  "9999-12-31T23:59:59.999Z",
  "2024-05-01T24:00:00Z",
  "2024-05-01T23:60:00Z",
  "2024-05-01T23:59:60Z",
  "2024-05-01T12:30:00+15:00",
  "2024-05-01T12:30:00+02",
  "2024-05-01T12:30:00,5Z",
  "2024-05-01T12:30:00.Z",
  "2024-5-01",
  "2024-05-01T",
  "2024-05-01Z",
  "",
  "not a date",
  "２０２４-05-01",
];
const ALPHABET = "0123456789-:.+ TtZz,x１";

test("agrees with the regex parser on valid, invalid and mutated dates", () => {
  let random = 7;
  const next = (n: number) => {
    random = (random * 1103515245 + 12345) & 0x7fffffff;
    return random % n;
  };
  const inputs = [...SEEDS];
  for (const seed of SEEDS) {
    for (let k = 0; k < 300; k++) {
      const chars = [...seed];
      const at = next(chars.length + 1);
      const op = next(3);
      const c = ALPHABET[next(ALPHABET.length)]!;
      if (op === 0) chars.splice(at, 1);
      else if (op === 1) chars.splice(at, 0, c);
      else chars[at] = c;
      inputs.push(chars.join(""));
    }
  }
  let valid = 0;
  for (const input of inputs) {
    const expected = reference(input);
    expect([input, parseIsoTime(input)]).toEqual([input, expected]);
    // Asked twice (validation, then enrichment): the same answer.
    expect(parseIsoTime(input)).toBe(expected);
    if (expected !== undefined) valid++;
  }
  expect(valid).toBeGreaterThan(500);
});

test("offsets, fractions and the calendar", () => {
  expect(parseIsoTime("2024-05-01T12:30:00.123+02:00")).toBe(Date.UTC(2024, 4, 1, 10, 30, 0, 123));
  expect(parseIsoTime("2024-05-01T12:30:00.5-0130")).toBe(Date.UTC(2024, 4, 1, 14, 0, 0, 500));
  expect(parseIsoTime("2024-05-01")).toBe(Date.UTC(2024, 4, 1));
  expect(isIsoDate("2024-02-29")).toBe(true);
  expect(isIsoDate("2100-02-29")).toBe(false);
  expect(isIsoDate("2024-05-01T12:30:00.1234567890Z")).toBe(false);
});
