/** A parsed JSON object (not null, not an array): the shape of an event or a body. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
