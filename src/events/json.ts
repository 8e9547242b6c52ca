/** A parsed JSON object (not null, not an array): the shape of an event or a body. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Why an event whose JSON.stringify throws (a RangeError: nested ~10k+ levels deep) is refused. */
export const UNSERIALISABLE = "event cannot be serialised as JSON (nested too deeply?)";
