import type { SourceConfig } from "../config/schema.ts";
import { hashWriteKey } from "./keys.ts";

/** An authenticated write key: the source it belongs to, its id and type. Never the secret. */
export interface ResolvedKey {
  source: SourceConfig;
  keyId: string;
  type: "browser" | "server";
}

/** Keys remembered after hashing; past this the memo starts again (bounded memory). */
const MEMO_SIZE = 1024;

/** Looks write keys up by their SHA-256 hash; plaintext keys never leave this map's input. */
export class KeyRing {
  private readonly byHash = new Map<string, ResolvedKey>();
  /**
   * Keys seen recently, so a busy client's key is hashed once, not on every request
   * (SHA-256 was ~3.5% of a single event's CPU). Only known keys are kept, in memory.
   */
  private readonly memo = new Map<string, ResolvedKey>();

  constructor(sources: SourceConfig[]) {
    for (const source of sources) {
      for (const k of source.writeKeys) {
        const hash = k.hash ?? hashWriteKey(k.key!);
        this.byHash.set(hash, { source, keyId: k.id, type: k.type });
      }
    }
  }

  resolve(key: string): ResolvedKey | undefined {
    if (key === "") return undefined;
    const known = this.memo.get(key);
    if (known) return known;
    const found = this.byHash.get(hashWriteKey(key));
    if (found) {
      if (this.memo.size >= MEMO_SIZE) this.memo.clear();
      this.memo.set(key, found);
    }
    return found;
  }
}

/**
 * The write key from the request's headers or query, in SPEC order: Basic, Bearer,
 * X-Write-Key, `writeKey` / `writekey` query parameter. The body is the last resort
 * (see `keyFromBody`), so a header always beats Jitsu's masked `id:***` body copy.
 */
export function keyFromHeaders(headers: Headers, url: string): string | undefined {
  const auth = headers.get("authorization");
  if (auth) {
    const space = auth.indexOf(" ");
    const scheme = auth.slice(0, space).toLowerCase();
    const value = auth.slice(space + 1).trim();
    if (scheme === "basic" && value) {
      const decoded = Buffer.from(value, "base64").toString("utf8");
      // `key:` with an empty password; a missing colon is accepted too.
      return decoded.endsWith(":") ? decoded.slice(0, -1) : decoded;
    }
    if (scheme === "bearer" && value) return value;
  }
  const header = headers.get("x-write-key");
  if (header) return header;
  const q = url.indexOf("?");
  if (q >= 0) {
    const params = new URLSearchParams(url.slice(q + 1));
    const fromQuery = params.get("writeKey") ?? params.get("writekey");
    if (fromQuery) return fromQuery;
  }
  return undefined;
}

/** The `writeKey` field of a JSON body (Segment Node clients before 3.1 send it only there). */
export function keyFromBody(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const key = (body as Record<string, unknown>).writeKey;
  return typeof key === "string" && key !== "" ? key : undefined;
}
