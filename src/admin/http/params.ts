import { SluiceError } from "../../errors.ts";

/** 400 naming the query or body parameter at fault (`{"error", "parameter"}`). */
export function badParameter(name: string, message: string): SluiceError {
  return new SluiceError("bad_request", `${name}: ${message}`, { parameter: name });
}

/** A comma-separated list parameter, each item checked against `allowed` when given. */
export function listParam<T extends string>(
  name: string,
  value: string | undefined,
  allowed?: readonly T[],
): Set<T> | undefined {
  if (value === undefined || value === "") return undefined;
  const items = value.split(",").map((v) => v.trim());
  for (const item of items) {
    if (item === "") throw badParameter(name, "empty item in the list");
    if (allowed && !(allowed as readonly string[]).includes(item)) {
      throw badParameter(
        name,
        `unknown value ${JSON.stringify(item)} (one of ${allowed.join(", ")})`,
      );
    }
  }
  return new Set(items as T[]);
}

/** A time parameter: ISO-8601, or milliseconds since the epoch. */
export function timeParam(name: string, value: string | undefined): Date | undefined {
  if (value === undefined || value === "") return undefined;
  const ms = /^\d{1,16}$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw badParameter(name, "not a time (ISO-8601 or milliseconds since the epoch)");
  }
  return new Date(ms);
}

/** A positive integer parameter with a ceiling. */
export function intParam(
  name: string,
  value: string | undefined,
  opts: { min: number; max: number; default: number },
): number {
  if (value === undefined || value === "") return opts.default;
  if (!/^\d+$/.test(value)) throw badParameter(name, "not a whole number");
  const n = Number(value);
  if (n < opts.min || n > opts.max) {
    throw badParameter(name, `must be between ${opts.min} and ${opts.max}`);
  }
  return n;
}
