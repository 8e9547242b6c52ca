import { KindGuard, type TObject, type TSchema, type TUnion } from "@sinclair/typebox";
import { type ValueError, ValueErrorType } from "@sinclair/typebox/errors";
import { Value } from "@sinclair/typebox/value";

export type { ConfigProblem } from "./errors.ts";

/** Where a value is in the config: keys and list indexes, from the top. */
export type ConfigPath = (string | number)[];

/** A problem found against the schema, before it is placed in the file. */
export interface SchemaProblem {
  at: ConfigPath;
  message: string;
}

/** `["sources", 0, "writeKeys", 1, "type"]` as `sources[0].writeKeys[1].type`. */
export function formatPath(path: ConfigPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * Fills in schema defaults where a value is missing, and nowhere else. (TypeBox's
 * Value.Default also replaces a value of the wrong type, `sources: {}` becoming `[]`,
 * which would hide the mistake instead of reporting it.)
 */
export function withDefaults(schema: TSchema, value: unknown): unknown {
  if (value === undefined) {
    if (schema.default === undefined) return undefined;
    value = structuredClone(schema.default);
  }
  if (KindGuard.IsObject(schema) && isMapping(value)) {
    for (const [key, prop] of Object.entries(schema.properties)) {
      const filled = withDefaults(prop, value[key]);
      if (filled !== undefined) value[key] = filled;
    }
  } else if (KindGuard.IsArray(schema) && Array.isArray(value)) {
    value.forEach((item, i) => {
      (value as unknown[])[i] = withDefaults(schema.items, item);
    });
  } else if (KindGuard.IsUnion(schema) && isMapping(value)) {
    const member = discriminated(schema)?.pick(value);
    if (member) withDefaults(member, value);
  }
  return value;
}

/**
 * Every way `value` fails `schema`, in words a config author can act on. Unions are
 * explained rather than reported as "Expected union value": a union of literals lists
 * the allowed values; a union of objects told apart by a literal field (a destination's
 * `type`) checks the value against the one it names, and says what that one needs.
 */
export function schemaProblems(schema: TSchema, value: unknown, at: ConfigPath = []) {
  return explain(schema, value, at, undefined);
}

/** The union member a value was checked as, for messages. */
interface Member {
  /** `webhook destination` */
  noun: string;
  /** `a webhook destination needs url (…); may have …` */
  needs: string;
}

function explain(
  schema: TSchema,
  value: unknown,
  at: ConfigPath,
  member: Member | undefined,
): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  const missing = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    const path = [...at, ...pointerPath(error.path)];
    const key = JSON.stringify(path);
    // A missing value fails once as "required" and again for its type: say it once.
    if (missing.has(key)) continue;
    if (error.type === ValueErrorType.ObjectRequiredProperty) missing.add(key);
    if (error.type === ValueErrorType.Union) {
      out.push(...explainUnion(error.schema as TUnion, error.value, path));
    } else {
      out.push({ at: path, message: describe(error, member) });
    }
  }
  return out;
}

function explainUnion(schema: TUnion, value: unknown, at: ConfigPath): SchemaProblem[] {
  const literals = literalValues(schema);
  if (literals) {
    const what = value === undefined ? "is required: " : "must be ";
    return [{ at, message: `${what}${oneOf(literals)}` }];
  }
  const tagged = discriminated(schema);
  const noun = nounOf(at);
  if (tagged) {
    const { tag, kinds } = tagged;
    const needs = kinds.map((k) => `\n${describeMember(tagged.member(k)!, tag, k)}`).join("");
    if (!isMapping(value)) {
      return [{ at, message: `must be a mapping with a ${tag}, one of:${needs}` }];
    }
    const member = tagged.pick(value);
    if (!member) {
      const what = value[tag] === undefined ? "is required," : "must be";
      return [{ at: [...at, tag], message: `${what} one of:${needs}` }];
    }
    const kind = String(value[tag]);
    return explain(member, value, at, {
      noun: `${kind} ${noun}`,
      needs: describeMember(member, tag, `a ${kind} ${noun}`),
    });
  }
  // No field tells the members apart: explain the member the value comes closest to.
  const ranked = schema.anyOf
    .map((member) => ({ member, errors: [...Value.Errors(member, value)].length }))
    .sort((a, b) => a.errors - b.errors);
  return explain(ranked[0]!.member, value, at, undefined);
}

/** What a member of a tagged union needs and may have: `webhook needs url (…); may have …`. */
function describeMember(member: TObject, tag: string, kind: string): string {
  const required = (member.required ?? []).filter((k) => k !== tag);
  const optional = Object.keys(member.properties).filter((k) => k !== tag && !required.includes(k));
  const parts = [];
  if (required.length > 0) parts.push(`needs ${required.map((k) => field(member, k)).join(", ")}`);
  if (optional.length > 0) parts.push(`may have ${optional.join(", ")}`);
  return `${kind} ${parts.join("; ") || "needs nothing else"}`;
}

/** A field name with its hint from the schema: `url (an http:// or https:// URL)`. */
function field(object: TObject, key: string): string {
  const hint = object.properties[key]?.hint;
  return typeof hint === "string" ? `${key} (${hint})` : key;
}

/** One TypeBox error as a sentence; `member` is the union member it was checked as. */
function describe(error: ValueError, member: Member | undefined): string {
  const s = error.schema as TSchema & Record<string, unknown>;
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty: {
      const literals = KindGuard.IsUnion(s) ? literalValues(s) : undefined;
      if (member) return `is required: ${member.needs}`;
      return literals ? `is required: ${oneOf(literals)}` : "is required";
    }
    case ValueErrorType.ObjectAdditionalProperties: {
      const known = Object.keys((s as unknown as TObject).properties ?? {});
      const where = member ? ` of a ${member.noun}` : "";
      return `unknown field${where}; the fields here are: ${known.join(", ")}`;
    }
    case ValueErrorType.Integer:
      return "must be a whole number";
    case ValueErrorType.Number:
      return "must be a number";
    case ValueErrorType.String:
      return "must be a string";
    case ValueErrorType.Boolean:
      return "must be true or false";
    case ValueErrorType.Array:
      return "must be a list";
    case ValueErrorType.Object:
      return "must be a mapping (key: value)";
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(s.const)}`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `must be at most ${s.maximum}`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `must be at least ${s.minimum}`;
    case ValueErrorType.IntegerExclusiveMinimum:
    case ValueErrorType.NumberExclusiveMinimum:
      return `must be more than ${s.exclusiveMinimum}`;
    case ValueErrorType.StringMinLength:
      return s.minLength === 1 ? "must not be empty" : `must be at least ${s.minLength} characters`;
    case ValueErrorType.StringPattern:
      return typeof s.hint === "string" ? `must be ${s.hint}` : `must match ${s.pattern}`;
    default:
      return error.message;
  }
}

interface Tagged {
  tag: string;
  kinds: string[];
  member(kind: string): TObject | undefined;
  pick(value: Record<string, unknown>): TObject | undefined;
}

/** A union of objects that one literal field (`type`) tells apart, or undefined. */
function discriminated(schema: TUnion): Tagged | undefined {
  const members = schema.anyOf;
  if (!members.every((m) => KindGuard.IsObject(m))) return undefined;
  const objects = members as TObject[];
  const tag = Object.keys(objects[0]!.properties).find((key) =>
    objects.every((m) => KindGuard.IsLiteral(m.properties[key])),
  );
  if (tag === undefined) return undefined;
  const kindOf = (m: TObject) => String(m.properties[tag]!.const);
  const member = (kind: string) => objects.find((m) => kindOf(m) === kind);
  return {
    tag,
    kinds: objects.map(kindOf),
    member,
    pick: (value) => (typeof value[tag] === "string" ? member(value[tag]) : undefined),
  };
}

function literalValues(schema: TUnion): string[] | undefined {
  if (!schema.anyOf.every((m) => KindGuard.IsLiteral(m))) return undefined;
  return schema.anyOf.map((m) => String(m.const));
}

function oneOf(values: string[]): string {
  return values.length === 1 ? values[0]! : `one of ${values.join(", ")}`;
}

/** The thing a path names, for messages: `destination` for `connections[0].destination`. */
function nounOf(at: ConfigPath): string {
  const word = [...at].reverse().find((s) => typeof s === "string");
  return word === undefined ? "value" : String(word).replace(/s$/, "");
}

/** A JSON pointer (`/sources/0/id`) as path segments, list indexes as numbers. */
function pointerPath(pointer: string): ConfigPath {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((s) => (/^(0|[1-9]\d*)$/.test(s) ? Number(s) : s));
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
