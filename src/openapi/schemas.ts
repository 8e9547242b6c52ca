import { Kind, type TSchema } from "@sinclair/typebox";

type Json = Record<string, unknown>;

/** Whether `value` is a TypeBox schema (it carries TypeBox's Kind symbol). */
export function isTypeBox(value: unknown): value is TSchema {
  return typeof value === "object" && value !== null && Kind in value;
}

/**
 * The component schemas of one document: a TypeBox schema with an `$id` becomes
 * `#/components/schemas/<$id>` (once), nested ones too; others are inlined. The
 * validator's `errorMessage` texts are dropped: they are not documentation.
 */
export class ComponentSchemas {
  private readonly named = new Map<string, Json>();

  /** `schema` as it appears in the document: a `$ref` when it is named, else plain JSON Schema. */
  use(schema: TSchema | Json): Json {
    return this.resolve(JSON.parse(JSON.stringify(schema, dropValidatorOnly)) as Json);
  }

  /** The named schema with this id, as registered (for reading, e.g. its description). */
  get(id: string): Json | undefined {
    return this.named.get(id);
  }

  /** Every named schema, by name. */
  all(): Record<string, Json> {
    return Object.fromEntries([...this.named].sort(([a], [b]) => a.localeCompare(b)));
  }

  private resolve(node: Json): Json {
    const id = node.$id;
    if (typeof id === "string") {
      const { $id: _id, ...body } = node;
      if (!this.named.has(id)) {
        this.named.set(id, {}); // placeholder first: a schema may refer to itself
        this.named.set(id, this.walk(discriminated(body)));
      }
      return { $ref: `#/components/schemas/${id}` };
    }
    return this.walk(node);
  }

  private walk(node: Json): Json {
    const out: Json = {};
    for (const [k, v] of Object.entries(node)) out[k] = this.child(v);
    return out;
  }

  private child(v: unknown): unknown {
    if (Array.isArray(v)) return v.map((x) => this.child(x));
    if (typeof v === "object" && v !== null) return this.resolve(v as Json);
    return v;
  }
}

function dropValidatorOnly(key: string, value: unknown) {
  return key === "errorMessage" ? undefined : value;
}

/**
 * A union of named object schemas that each fix `type` to a constant (the six event
 * types) as OpenAPI's `oneOf` with a discriminator, so that tools pick the variant.
 */
function discriminated(node: Json): Json {
  const members = node.anyOf;
  if (!Array.isArray(members)) return node;
  const mapping: Record<string, string> = {};
  for (const m of members as Json[]) {
    const id = m.$id;
    const type = ((m.properties as Json | undefined)?.type as Json | undefined)?.const;
    if (typeof id !== "string" || typeof type !== "string") return node;
    mapping[type] = `#/components/schemas/${id}`;
  }
  const { anyOf, ...rest } = node;
  return { ...rest, oneOf: anyOf, discriminator: { propertyName: "type", mapping } };
}
