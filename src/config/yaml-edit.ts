/**
 * Edits a config file (YAML or JSON) in place, keeping every byte it does not change:
 * comments, order, quoting, indentation and the JSON-ness of a JSON file. The `yaml`
 * package's Document API finds the nodes and their places in the text; the edit is
 * spliced in there, written in the style of its neighbours. (Printing the edited
 * Document again would keep comments but not layout: it re-indents lists, pads flow
 * brackets and puts a whole JSON file on one line.) Every edit is checked by parsing
 * the result: it must read as the original with exactly the intended change, or the
 * caller gets `undefined` and asks the user to make the change by hand.
 */

import {
  type Document,
  isAlias,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  type Node,
  type Pair,
  parse,
  parseDocument,
  Scalar,
  type YAMLMap,
  type YAMLSeq,
} from "yaml";
import type { ConfigPath } from "./problems.ts";
import { YAML_OPTIONS } from "./yaml.ts";

/** A list item to write: a mapping of scalars (a write key, an admin token). */
export type Entry = Record<string, string | number | boolean>;

/**
 * `text` with `entry` appended to the list at `path`; the list, and the mappings above
 * it, are created when missing (`admin.tokens` in a file without `admin`).
 */
export function appendToList(text: string, path: ConfigPath, entry: Entry): string | undefined {
  const file = open(text);
  if (!file) return undefined;
  const expected = unshared(file.value) ?? {};
  const list = walk(expected, path, true);
  if (!Array.isArray(list)) return undefined;
  list.push({ ...entry });
  return checked(file.edit(appendEdit(file, path, entry)), expected);
}

/** `text` without the item at `path` (whose last segment is the item's index in its list). */
export function removeFromList(text: string, path: ConfigPath): string | undefined {
  const index = path.at(-1);
  const file = open(text);
  if (!file || typeof index !== "number") return undefined;
  const expected = unshared(file.value);
  const list = walk(expected, path.slice(0, -1), false);
  if (!Array.isArray(list) || index >= list.length) return undefined;
  list.splice(index, 1);
  return checked(file.edit(removeEdit(file, path.slice(0, -1), index)), expected);
}

/** A replacement of the text between two offsets. */
interface Splice {
  from: number;
  to: number;
  insert: string;
}

interface OpenFile {
  text: string;
  doc: Document;
  value: unknown;
  /** A JSON file stays JSON. */
  json: boolean;
  nl: string;
  /** The text with the splices made (they must not overlap), or undefined without any. */
  edit(splices: Splice | Splice[] | undefined): string | undefined;
}

function open(text: string): OpenFile | undefined {
  const doc = parseDocument(text, YAML_OPTIONS);
  if (doc.errors.length > 0) return undefined;
  return {
    text,
    doc,
    value: doc.toJS(),
    json: text.replace(/^(\s|#.*)*/, "").startsWith("{"),
    nl: text.includes("\r\n") ? "\r\n" : "\n",
    edit: (splices) => {
      if (!splices) return undefined;
      let out = text;
      for (const s of [splices].flat().sort((a, b) => b.from - a.from)) {
        out = out.slice(0, s.from) + s.insert + out.slice(s.to);
      }
      return out;
    },
  };
}

function checked(edited: string | undefined, expected: unknown): string | undefined {
  if (edited === undefined) return undefined;
  try {
    return Bun.deepEquals(parse(edited, YAML_OPTIONS), expected, true) ? edited : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A deep copy in which no two places share an object. (An alias reads as the same
 * object as its anchor; a change made to one place must not show in the other, or an
 * edit through an anchor would pass the check.)
 */
function unshared(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unshared);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unshared(v)]));
}

/** The value at `path` in plain data; with `create`, missing mappings and the list are made. */
function walk(value: unknown, path: ConfigPath, create: boolean): unknown {
  let node = value;
  for (const [i, seg] of path.entries()) {
    if (typeof node !== "object" || node === null) return undefined;
    const container = node as Record<string | number, unknown>;
    if (container[seg] == null && create && typeof seg === "string") {
      container[seg] = i === path.length - 1 ? [] : {};
    }
    node = container[seg];
  }
  return node;
}

// ---- appending ----

function appendEdit(file: OpenFile, path: ConfigPath, entry: Entry): Splice | undefined {
  let node: unknown = file.doc.contents;
  let parent: YAMLMap | undefined;
  let i = 0;
  for (; i < path.length; i++) {
    // Editing through an alias would change every place its anchor is used.
    if (isAlias(node)) return undefined;
    const seg = path[i]!;
    if (isMap(node)) {
      const pair = pairOf(node, seg);
      if (!pair || isEmpty(pair.value)) {
        parent = node;
        break;
      }
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      node = node.items[seg];
    } else if (node == null && i === 0) {
      return createAtTop(file, path, entry);
    } else return undefined;
  }
  if (parent) {
    const rest = path.slice(i);
    if (!rest.every((s) => typeof s === "string")) return undefined;
    return addPair(file, parent, rest as string[], entry);
  }
  if (isAlias(node) || !isSeq(node)) return undefined;
  return addItem(file, node, entry);
}

/** An item at the end of a list, like the item before it. */
function addItem(file: OpenFile, seq: YAMLSeq, entry: Entry): Splice | undefined {
  const { text, nl } = file;
  const last = seq.items.at(-1);
  if (seq.flow) {
    if (!isNode(last)) {
      const open = seq.range?.[0];
      if (open === undefined || text[open] !== "[") return undefined;
      return { from: open + 1, to: open + 1, insert: flowEntry(file, entry, undefined) };
    }
    const at = end(last);
    const multiline = text.slice(seq.range![0], last.range![0]).includes("\n");
    const sep = multiline ? `,${nl}${" ".repeat(column(text, last.range![0]))}` : ", ";
    return { from: at, to: at, insert: sep + flowEntry(file, entry, last) };
  }
  if (!isNode(last)) return undefined;
  const dash = dashBefore(text, last.range![0]);
  if (dash === undefined) return undefined;
  const pad = " ".repeat(column(text, dash));
  const item =
    isMap(last) && !last.flow
      ? blockEntry(file, entry, last, column(text, dash) + 2)
      : flowEntry(file, entry, last);
  const at = lineEnd(text, end(last));
  return { from: at, to: at, insert: `${nl}${pad}- ${item}` };
}

/** `key: { …: [entry] }` added to a mapping that lacks the key (or has it empty). */
function addPair(file: OpenFile, map: YAMLMap, keys: string[], entry: Entry): Splice | undefined {
  const { text, nl } = file;
  const [key, ...deeper] = keys as [string, ...string[]];
  const existing = pairOf(map, key);
  if (map.flow || file.json) {
    const value = flowNest(file, deeper, entry);
    if (existing) return replaceEmpty(file, existing, value);
    const last = map.items.at(-1);
    if (!last) {
      const open = map.range?.[0];
      if (open === undefined || text[open] !== "{") return undefined;
      return { from: open + 1, to: open + 1, insert: ` ${flowKey(file, key)}: ${value} ` };
    }
    const lastKey = last.key as Node;
    const at = end(isNode(last.value) ? last.value : lastKey);
    const multiline = text.slice(map.range![0], lastKey.range![0]).includes("\n");
    const sep = multiline ? `,${nl}${" ".repeat(column(text, lastKey.range![0]))}` : ", ";
    return { from: at, to: at, insert: `${sep}${flowKey(file, key)}: ${value}` };
  }
  const first = map.items[0]?.key;
  if (!isNode(first)) return undefined;
  const col = column(text, first.range![0]);
  if (existing) {
    // `key: null` (or ~) gives way to a flow value; a bare `key:` gets block lines below.
    const value = existing.value;
    if (isScalar(value) && value.range && value.range[0] < value.range[1]) {
      return replaceEmpty(file, existing, flowNest(file, deeper, entry));
    }
    const colon = colonAfter(text, end(existing.key as Node));
    if (colon === undefined) return undefined;
    const at = lineEnd(text, colon);
    return { from: at, to: at, insert: blockNest(file, deeper, entry, col + 2) };
  }
  const at = lineEnd(text, end(map));
  return {
    from: at,
    to: at,
    insert: `${nl}${" ".repeat(col)}${key}:${blockNest(file, deeper, entry, col + 2)}`,
  };
}

/** A file without content (only comments): the whole path written at the top level. */
function createAtTop(file: OpenFile, path: ConfigPath, entry: Entry): Splice | undefined {
  if (file.json || !path.every((s) => typeof s === "string")) return undefined;
  const [key, ...deeper] = path as string[];
  const { text, nl } = file;
  const lead = text === "" || text.endsWith("\n") ? "" : nl;
  const insert = `${lead}${key}:${blockNest(file, deeper, entry, 2)}${nl}`;
  return { from: text.length, to: text.length, insert };
}

/** Replaces an empty value (`key:`, `key: null`, `key: ~`) with `value`. */
function replaceEmpty(file: OpenFile, pair: Pair, value: string): Splice | undefined {
  if (isScalar(pair.value) && pair.value.range && pair.value.range[0] < pair.value.range[1]) {
    return { from: pair.value.range[0], to: pair.value.range[1], insert: value };
  }
  const at = colonAfter(file.text, end(pair.key as Node));
  return at === undefined ? undefined : { from: at, to: at, insert: ` ${value}` };
}

/** `k1:\n  k2:\n    - entry` below a key at column `col - 2`. */
function blockNest(file: OpenFile, keys: string[], entry: Entry, col: number): string {
  const pad = " ".repeat(col);
  if (keys.length === 0) return `${file.nl}${pad}- ${flowEntry(file, entry, undefined)}`;
  const [key, ...deeper] = keys as [string, ...string[]];
  return `${file.nl}${pad}${key}:${blockNest(file, deeper, entry, col + 2)}`;
}

/** `{ k1: { k2: [entry] } }` on one line (JSON in a JSON file). */
function flowNest(file: OpenFile, keys: string[], entry: Entry): string {
  if (keys.length === 0) return `[${flowEntry(file, entry, undefined)}]`;
  const [key, ...deeper] = keys as [string, ...string[]];
  return `{ ${flowKey(file, key)}: ${flowNest(file, deeper, entry)} }`;
}

// ---- removing ----

function removeEdit(
  file: OpenFile,
  listPath: ConfigPath,
  index: number,
): Splice | Splice[] | undefined {
  const { text } = file;
  let node: unknown = file.doc.contents;
  let holder: Pair | undefined;
  for (const seg of listPath) {
    if (isAlias(node)) return undefined;
    if (isMap(node)) {
      holder = pairOf(node, seg);
      node = holder?.value;
    } else if (isSeq(node) && typeof seg === "number") {
      holder = undefined;
      node = node.items[seg];
    } else return undefined;
  }
  if (!isSeq(node)) return undefined;
  const item = node.items[index];
  if (!isNode(item) || !item.range) return undefined;
  const [start, stop] = [item.range[0], end(item)];
  if (node.flow) {
    if (node.items.length === 1) {
      const [open, close] = [node.range![0], node.range![1] - 1];
      return text[close] === "]" ? { from: open + 1, to: close, insert: "" } : undefined;
    }
    const after = skipSpace(text, stop, 1);
    if (text[after] === ",") return { from: start, to: skipSpace(text, after + 1, 1), insert: "" };
    const before = skipSpace(text, start - 1, -1);
    return text[before] === "," ? { from: before, to: stop, insert: "" } : undefined;
  }
  const dash = dashBefore(text, start);
  if (dash === undefined) return undefined;
  const from = lineStart(text, dash);
  const to = lineEndNext(text, stop);
  if (node.items.length > 1) return { from, to, insert: "" };
  // The last item: leave `key: []`, since a bare `key:` reads as null.
  const colon = holder && colonAfter(text, end(holder.key as Node));
  if (colon === undefined || colon > from) return undefined;
  return [
    { from: colon, to: colon, insert: " []" },
    { from, to, insert: "" },
  ];
}

// ---- writing entries in the style of their neighbours ----

/** `{ id: x, type: server, hash: "…" }`, each value quoted as in `like`; JSON in a JSON file. */
function flowEntry(file: OpenFile, entry: Entry, like: unknown): string {
  const fields = Object.entries(entry).map(
    ([k, v]) =>
      `${flowKey(file, k)}: ${file.json ? JSON.stringify(v) : scalar(v, styleOf(like, k))}`,
  );
  const tight = isMap(like) && like.range && /^\{\S/.test(file.text.slice(like.range[0]));
  return tight ? `{${fields.join(", ")}}` : `{ ${fields.join(", ")} }`;
}

/** `id: x` lines of a block mapping list item, the first after its `- `. */
function blockEntry(file: OpenFile, entry: Entry, like: YAMLMap, col: number): string {
  return Object.entries(entry)
    .map(([k, v]) => `${k}: ${scalar(v, styleOf(like, k))}`)
    .join(`${file.nl}${" ".repeat(col)}`);
}

function flowKey(file: OpenFile, key: string): string {
  return file.json ? JSON.stringify(key) : key;
}

/** How `like` writes its value for `key`: plain, "double" or 'single' quoted. */
function styleOf(like: unknown, key: string): Scalar.Type | undefined {
  if (!isMap(like)) return undefined;
  const value = pairOf(like, key)?.value;
  return isScalar(value) ? value.type : undefined;
}

/** A value as a YAML flow scalar: in `style` when it allows, plain only when that reads back. */
export function scalar(value: string | number | boolean, style: Scalar.Type | undefined): string {
  if (typeof value !== "string") return String(value);
  if (style === Scalar.QUOTE_SINGLE) return `'${value.replaceAll("'", "''")}'`;
  const plain = /^[A-Za-z0-9_./@-]+$/.test(value) && safeParse(`v: ${value}`)?.v === value;
  return style !== Scalar.QUOTE_DOUBLE && plain ? value : JSON.stringify(value);
}

function safeParse(text: string): Record<string, unknown> | undefined {
  try {
    return parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

// ---- places in the text ----

function pairOf(map: YAMLMap, key: string | number): Pair | undefined {
  return map.items.find(
    (p) => isPair(p) && (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(key),
  );
}

function isEmpty(value: unknown): boolean {
  return value == null || (isScalar(value) && value.value == null);
}

/** Where a node's own text ends (before any comment after it). */
function end(node: Node): number {
  return node.range![1];
}

/** The `-` of the block list item whose content starts at `start`. */
function dashBefore(text: string, start: number): number | undefined {
  const at = skipSpace(text, start - 1, -1);
  return text[at] === "-" ? at : undefined;
}

/** The first offset from `at`, going `step` (1 or -1), that is not blank or a line break. */
function skipSpace(text: string, at: number, step: 1 | -1): number {
  while (at >= 0 && at < text.length && /\s/.test(text[at]!)) at += step;
  return at;
}

/** The offset just after the `:` that follows a mapping key ending at `at`. */
function colonAfter(text: string, at: number): number | undefined {
  const colon = skipSpace(text, at, 1);
  return text[colon] === ":" ? colon + 1 : undefined;
}

function lineStart(text: string, at: number): number {
  return text.lastIndexOf("\n", at - 1) + 1;
}

function column(text: string, at: number): number {
  return at - lineStart(text, at);
}

/** The end of the line holding `at` (or of the line before, when `at` starts a line). */
function lineEnd(text: string, at: number): number {
  const from = at > 0 && text[at - 1] === "\n" ? at - 1 : at;
  let stop = text.indexOf("\n", from);
  if (stop < 0) stop = text.length;
  return text[stop - 1] === "\r" ? stop - 1 : stop;
}

/** The start of the line after the one that ends at or holds `at`. */
function lineEndNext(text: string, at: number): number {
  const from = at > 0 && text[at - 1] === "\n" ? at - 1 : at;
  const stop = text.indexOf("\n", from);
  return stop < 0 ? text.length : stop + 1;
}
