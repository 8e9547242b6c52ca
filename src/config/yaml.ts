import type * as Yaml from "yaml";
import type { ConfigProblem } from "./errors.ts";
import type { ConfigPath } from "./problems.ts";

/** Line and column (both from 1) of a place in the config file. */
export interface Position {
  line: number;
  column: number;
}

/** A config file's text, parsed: the value and where each part of it is. */
export interface ParsedText {
  value: unknown;
  /** Where the value at `path` is; for a missing one, its nearest enclosing value. */
  locate(path: ConfigPath): Position | undefined;
}

/** Parse options shared by the loader's positions and the editor, so both read a file alike. */
export const YAML_OPTIONS = { merge: true } as const;

/**
 * The `yaml` package, loaded on first use: it costs ~80 ms of CPU to load, which every
 * start would pay, while it is needed only to place a problem in the file, to edit it,
 * or for `sluice check`. (A static import in the compiled binary is bundled all the same.)
 */
function yaml(): typeof Yaml {
  return require("yaml") as typeof Yaml;
}

/**
 * Parses a config file (YAML, or JSON, which YAML includes) with Bun.YAML, as sluice
 * always has. Positions come from the `yaml` package, which keeps every node's place in
 * the text, parsed only when a problem needs placing; a syntax error is reported with
 * its line and column from it.
 */
export function parseConfigText(text: string): ParsedText | { problems: ConfigProblem[] } {
  let value: unknown;
  try {
    value = Bun.YAML.parse(text);
  } catch (err) {
    return { problems: syntaxProblems(text, err as Error) };
  }
  let located: { doc: Yaml.Document; lines: Yaml.LineCounter } | undefined;
  return {
    value,
    locate(path) {
      located ??= positions(text);
      const offset = nodeOffset(located.doc, path);
      if (offset === undefined) return undefined;
      const { line, col } = located.lines.linePos(offset);
      return { line, column: col };
    },
  };
}

/**
 * Keys given twice in one mapping: YAML readers keep the last one and drop the first
 * without a word (a whole list of sources, say), so `sluice check` warns about them.
 */
export function duplicateKeys(text: string): ConfigProblem[] {
  return positions(text)
    .doc.errors.filter((e) => e.code === "DUPLICATE_KEY")
    .map((e) => ({
      ...placeOf(e),
      path: "",
      message: "a key given twice here: the last one counts",
    }));
}

function positions(text: string) {
  const { LineCounter, parseDocument } = yaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { ...YAML_OPTIONS, lineCounter: lines, uniqueKeys: true });
  return { doc, lines };
}

function syntaxProblems(text: string, err: Error): ConfigProblem[] {
  const found = positions(text).doc.errors.filter((e) => e.code !== "DUPLICATE_KEY");
  if (found.length === 0) return [{ path: "", message: `not valid YAML: ${err.message}` }];
  return found.map((e) => ({
    path: "",
    message: `not valid YAML: ${e.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, "")}`,
    ...placeOf(e),
  }));
}

function placeOf(e: Yaml.YAMLError): Partial<Position> {
  const pos = e.linePos?.[0];
  return pos ? { line: pos.line, column: pos.col } : {};
}

/**
 * The text offset of the deepest node along `path`: the key of a mapping entry (so an
 * unknown field points at its name), the item of a list, else the enclosing node.
 */
function nodeOffset(doc: Yaml.Document, path: ConfigPath): number | undefined {
  const { isMap, isNode, isSeq } = yaml();
  let node: unknown = doc.contents;
  let offset = isNode(node) ? node.range?.[0] : undefined;
  for (const seg of path) {
    node = resolve(doc, node);
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(seg));
      if (!pair) break;
      offset = isNode(pair.key) ? (pair.key.range?.[0] ?? offset) : offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg];
      if (!isNode(item)) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else break;
  }
  return offset;
}

function resolve(doc: Yaml.Document, node: unknown): unknown {
  return yaml().isAlias(node) ? (node as Yaml.Alias).resolve(doc) : node;
}

function keyText(key: unknown): string | undefined {
  if (yaml().isScalar(key)) return String((key as Yaml.Scalar).value);
  return typeof key === "string" ? key : undefined;
}
