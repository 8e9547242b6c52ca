/**
 * Records an admin token's hash in `sluice.yaml` by editing it as text, so that its
 * comments and layout survive (as `keys create` does, see config/edit.ts). Each
 * candidate edit is kept only if parsing it gives exactly the parsed original plus the
 * one token; when none passes, the caller prints the lines to add by hand.
 */

import {
  contentEnd,
  lineEndNext,
  lineStart,
  matchBracket,
  significant,
} from "../config/yaml-text.ts";

/** An admin token entry as the config file stores it. */
export interface AdminTokenEntry {
  id: string;
  hash: string;
}

type Raw = Record<string, unknown> & { admin?: { tokens?: unknown } | null };

/** The entry as one flow mapping in the file's own style (YAML or JSON). */
export function formatTokenEntry(entry: AdminTokenEntry, json: boolean): string {
  return json
    ? `{ "id": ${JSON.stringify(entry.id)}, "hash": "${entry.hash}" }`
    : `{ id: ${JSON.stringify(entry.id)}, hash: "${entry.hash}" }`;
}

/** `text` with `entry` appended to `admin.tokens` (both made if missing), or undefined. */
export function addAdminToken(text: string, entry: AdminTokenEntry): string | undefined {
  const raw = parse(text);
  if (!raw) return undefined;
  const expected = structuredClone(raw);
  const admin = (expected.admin ?? {}) as { tokens?: unknown };
  const tokens = Array.isArray(admin.tokens) ? admin.tokens : [];
  expected.admin = { ...admin, tokens: [...tokens, { ...entry }] };
  const json = isJson(text);
  const line = formatTokenEntry(entry, json);
  const nl = text.includes("\r\n") ? "\r\n" : "\n";
  for (const candidate of candidates(text, line, json, nl, "admin" in raw)) {
    if (Bun.deepEquals(parse(candidate), expected, true)) return candidate;
  }
  return undefined;
}

function* candidates(text: string, line: string, json: boolean, nl: string, hasAdmin: boolean) {
  // An existing `tokens:` list (flow or block), wherever the file keeps it.
  for (const m of text.matchAll(/(["']?)tokens\1[ \t]*:/g)) {
    const afterColon = m.index + m[0].length;
    const rest = text.slice(afterColon, contentEnd(text, afterColon));
    const flow = rest.search(/\S/);
    if (flow >= 0 && text[afterColon + flow] === "[") {
      const edit = addToFlowList(text, afterColon + flow, line, nl);
      if (edit !== undefined) yield edit;
    } else if (/^\s*(#.*)?$/.test(rest)) {
      yield addToBlockList(text, m.index, m.index - lineStart(text, m.index), line, nl);
    }
  }
  if (json) {
    // JSON stays JSON: only a new `"admin"` member (an existing one was handled above).
    const close = text.lastIndexOf("}");
    if (hasAdmin || close < 0) return;
    const sig = significant(text, 0, close);
    const last = sig.at(-1);
    if (last === undefined) return;
    const sep = text[last] === "{" ? "" : ",";
    yield `${text.slice(0, last + 1)}${sep}${nl}  "admin": { "tokens": [${line}] }${nl}${text.slice(close)}`;
    return;
  }
  // `admin:` with no tokens under it, as a block or as `admin: {}`.
  for (const m of text.matchAll(/^admin[ \t]*:([ \t]*\{[ \t]*\})?[ \t]*(#.*)?$/gm)) {
    const end = contentEnd(text, m.index);
    yield `${text.slice(0, m.index)}admin:${nl}  tokens:${nl}    - ${line}${text.slice(end)}`;
  }
  // A new section only where none exists: YAML parsers differ on a repeated key.
  if (hasAdmin) return;
  const body = text.replace(/\s*$/, "");
  yield `${body}${body === "" ? "" : nl}admin:${nl}  tokens:${nl}    - ${line}${nl}`;
}

/** Appends an item to a block sequence that follows `tokens:` on the next lines. */
function addToBlockList(text: string, keyAt: number, keyCol: number, line: string, nl: string) {
  let insertAt = contentEnd(text, keyAt);
  let itemIndent: number | undefined;
  for (let pos = lineEndNext(text, keyAt); pos < text.length; pos = lineEndNext(text, pos)) {
    const content = text.slice(pos, contentEnd(text, pos));
    if (/^\s*(#.*)?$/.test(content)) continue;
    const indent = content.length - content.trimStart().length;
    const isItem = /^-(\s|$)/.test(content.trimStart());
    if (itemIndent === undefined) {
      if (!isItem || indent < keyCol) break;
      itemIndent = indent;
    } else if (indent < itemIndent || (indent === itemIndent && !isItem)) break;
    insertAt = contentEnd(text, pos);
  }
  const pad = " ".repeat(itemIndent ?? keyCol + 2);
  return `${text.slice(0, insertAt)}${nl}${pad}- ${line}${text.slice(insertAt)}`;
}

/** Appends an item to a flow sequence `[ … ]` starting at `open`, in its own layout. */
function addToFlowList(text: string, open: number, line: string, nl: string) {
  const close = matchBracket(text, open);
  if (close === undefined) return undefined;
  const sig = significant(text, open + 1, close);
  if (sig.length === 0) return `${text.slice(0, open + 1)}${line}${text.slice(close)}`;
  const first = sig[0]!;
  const last = sig.at(-1)!;
  if (text[last] === ",") return `${text.slice(0, last + 1)} ${line}${text.slice(last + 1)}`;
  const multiline = text.slice(open, first).includes("\n");
  const sep = multiline ? `,${nl}${" ".repeat(first - lineStart(text, first))}` : ", ";
  return `${text.slice(0, last + 1)}${sep}${line}${text.slice(last + 1)}`;
}

function parse(text: string): Raw | undefined {
  try {
    const v = Bun.YAML.parse(text) ?? {};
    return typeof v === "object" && !Array.isArray(v) ? (v as Raw) : undefined;
  } catch {
    return undefined;
  }
}

function isJson(text: string): boolean {
  return text.replace(/^(\s|#.*)*/, "").startsWith("{");
}
