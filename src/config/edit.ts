/**
 * Edits `sluice.yaml` in place, as text, so that comments and layout survive
 * (Bun.YAML parses but has no round-trip editor). Each edit is tried at the places
 * the file's shape suggests; a candidate is kept only if parsing it gives exactly the
 * parsed original with the one intended change. When no candidate passes, the caller
 * gets `undefined` and tells the user the line to add or remove by hand.
 */

import { contentEnd, lineEndNext, lineStart, matchBracket, significant } from "./yaml-text.ts";

/** A write key entry as the config file stores it. */
export interface WriteKeyEntry {
  id: string;
  type: "browser" | "server";
  hash: string;
}

type Raw = { sources?: { id?: unknown; writeKeys?: unknown }[] } & Record<string, unknown>;

/** The entry as one line of the file's own style (YAML flow mapping or JSON object). */
export function formatEntry(entry: WriteKeyEntry, json: boolean): string {
  if (json) {
    return `{ "id": ${JSON.stringify(entry.id)}, "type": "${entry.type}", "hash": "${entry.hash}" }`;
  }
  return `{ id: ${yamlScalar(entry.id)}, type: ${entry.type}, hash: "${entry.hash}" }`;
}

/** `text` with `entry` appended to the writeKeys of source `sourceId`, or undefined. */
export function addWriteKey(
  text: string,
  sourceId: string,
  entry: WriteKeyEntry,
): string | undefined {
  const raw = parse(text);
  const source = raw?.sources?.find((s) => s?.id === sourceId);
  if (!raw || !source) return undefined;
  const expected = structuredClone(raw);
  const target = expected.sources!.find((s) => s?.id === sourceId)!;
  const keys = Array.isArray(target.writeKeys) ? target.writeKeys : [];
  target.writeKeys = [...keys, { ...entry }];
  const line = formatEntry(entry, isJson(text));
  const nl = text.includes("\r\n") ? "\r\n" : "\n";
  for (const candidate of addCandidates(text, sourceId, line, nl)) {
    if (Bun.deepEquals(parse(candidate), expected, true)) return candidate;
  }
  return undefined;
}

/** `text` without the write key `keyId` (whichever source has it), or undefined. */
export function removeWriteKey(text: string, keyId: string): string | undefined {
  const raw = parse(text);
  if (!raw?.sources) return undefined;
  const expected = structuredClone(raw);
  let found = false;
  for (const s of expected.sources!) {
    if (!Array.isArray(s?.writeKeys)) continue;
    const kept = s.writeKeys.filter((k: { id?: unknown }) => k?.id !== keyId);
    found ||= kept.length !== s.writeKeys.length;
    s.writeKeys = kept;
  }
  if (!found) return undefined;
  for (const candidate of removeCandidates(text, keyId)) {
    if (Bun.deepEquals(parse(candidate), expected, true)) return candidate;
  }
  return undefined;
}

function* addCandidates(text: string, sourceId: string, line: string, nl: string) {
  for (const m of text.matchAll(/(["']?)writeKeys\1[ \t]*:/g)) {
    const afterColon = m.index + m[0].length;
    const col = m.index - lineStart(text, m.index);
    const rest = text.slice(afterColon, contentEnd(text, afterColon));
    const flow = rest.search(/\S/);
    if (flow >= 0 && rest[flow] === "[") {
      const edit = addToFlowList(text, afterColon + flow, line, nl);
      if (edit !== undefined) yield edit;
    } else if (/^\s*(#.*)?$/.test(rest)) {
      yield addToBlockList(text, m.index, col, line, nl);
    }
  }
  // A source without a writeKeys field: add one under its `id:` line.
  const id = new RegExp(
    `^([ \\t]*(?:-[ \\t]+)?)(["']?)id\\2[ \\t]*:[ \\t]*(["']?)${escapeRe(sourceId)}\\3[ \\t]*(#.*)?$`,
    "gm",
  );
  for (const m of text.matchAll(id)) {
    const col = m[1]!.length;
    const at = contentEnd(text, m.index);
    const pad = " ".repeat(col);
    yield `${text.slice(0, at)}${nl}${pad}writeKeys:${nl}${pad}  - ${line}${text.slice(at)}`;
  }
}

/** Appends an item to a block sequence that follows `writeKeys:` on the next lines. */
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

function* removeCandidates(text: string, keyId: string) {
  const idRe = new RegExp(
    `(["']?)id\\1[ \\t]*:[ \\t]*(["']?)${escapeRe(keyId)}\\2(?=[\\s,}#]|$)`,
    "g",
  );
  for (const m of text.matchAll(idRe)) {
    const flow = removeFlowMapping(text, m.index);
    if (flow !== undefined) yield* withEmptyList(text, flow);
    const block = blockItemRange(text, m.index);
    if (block) yield* withEmptyList(text, text.slice(0, block.start) + text.slice(block.end));
  }
}

/**
 * An edit, then the same edit with the nearest `writeKeys:` above the change given an
 * empty flow list: once its last item is gone, a bare `writeKeys:` would read as null.
 */
function* withEmptyList(original: string, edited: string) {
  yield edited;
  let at = 0;
  while (at < edited.length && original[at] === edited[at]) at++;
  const key = [
    ...edited.slice(0, at).matchAll(/(["']?)writeKeys\1[ \t]*:(?=[ \t]*(#.*)?\r?\n)/g),
  ].at(-1);
  if (key) {
    const end = key.index + key[0].length;
    yield `${edited.slice(0, end)} []${edited.slice(end)}`;
  }
}

/** Removes the `{ … }` around `at`, with its line (block item) or its comma (flow list). */
function removeFlowMapping(text: string, at: number): string | undefined {
  let depth = 0;
  let open = -1;
  for (let i = at; i >= 0; i--) {
    if (text[i] === "}") depth++;
    else if (text[i] === "{") {
      if (depth === 0) {
        open = i;
        break;
      }
      depth--;
    }
  }
  if (open < 0) return undefined;
  const close = matchBracket(text, open);
  if (close === undefined) return undefined;
  const start = lineStart(text, open);
  const end = contentEnd(text, close);
  if (/^\s*-\s*$/.test(text.slice(start, open)) && /^\s*(#.*)?$/.test(text.slice(close + 1, end))) {
    return text.slice(0, start) + text.slice(lineEndNext(text, close));
  }
  let after = close + 1;
  while (/\s/.test(text[after] ?? "")) after++;
  if (text[after] === ",") {
    after++;
    while (/\s/.test(text[after] ?? "")) after++;
    return text.slice(0, open) + text.slice(after);
  }
  let before = open - 1;
  while (before >= 0 && /\s/.test(text[before]!)) before--;
  if (text[before] === ",") return text.slice(0, before) + text.slice(close + 1);
  if (text[before] === "[" && text[after] === "]") {
    return text.slice(0, before + 1) + text.slice(after);
  }
  return text.slice(0, open) + text.slice(close + 1);
}

/** The lines of the block sequence item (`- id: x` and its deeper lines) holding `at`. */
function blockItemRange(text: string, at: number): { start: number; end: number } | undefined {
  let start = lineStart(text, at);
  const idCol = at - start;
  if (!/^\s*-\s+$/.test(text.slice(start, at))) {
    if (!/^\s*$/.test(text.slice(start, at))) return undefined;
    // The id is a later key of the item: walk up over its siblings to the `- ` line.
    for (;;) {
      if (start === 0) return undefined;
      start = lineStart(text, start - 1);
      const line = text.slice(start, contentEnd(text, start));
      if (/^\s*(#.*)?$/.test(line)) continue;
      if (line.length - line.trimStart().length >= idCol) continue;
      if (/^\s*-\s+$/.test(line.slice(0, idCol)) && line.length > idCol) break;
      return undefined;
    }
  }
  const dashCol = text.indexOf("-", start) - start;
  let end = lineEndNext(text, at);
  for (let pos = end; pos < text.length; pos = lineEndNext(text, pos)) {
    const content = text.slice(pos, contentEnd(text, pos));
    if (/^\s*(#.*)?$/.test(content)) continue;
    const indent = content.length - content.trimStart().length;
    if (indent <= dashCol) break;
    end = lineEndNext(text, pos);
  }
  return { start, end };
}

function parse(text: string): Raw | undefined {
  try {
    const v = Bun.YAML.parse(text);
    return typeof v === "object" && v !== null ? (v as Raw) : undefined;
  } catch {
    return undefined;
  }
}

function isJson(text: string): boolean {
  return text.replace(/^(\s|#.*)*/, "").startsWith("{");
}

/** An id as a YAML plain scalar when it reads back as the same string, else quoted. */
function yamlScalar(value: string): string {
  try {
    if ((Bun.YAML.parse(`v: ${value}`) as { v: unknown }).v === value) return value;
  } catch {}
  return JSON.stringify(value);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
