import {
  type Document,
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
} from "yaml";
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

/** Parse options shared by the loader and the editor, so both read a file alike. */
export const YAML_OPTIONS = { merge: true } as const;

/**
 * Parses a config file (YAML, or JSON, which YAML includes) with the `yaml` package,
 * which keeps every node's place in the text. A syntax error, a duplicate key or a
 * second document comes back as problems with line and column.
 */
export function parseConfigText(text: string): ParsedText | { problems: ConfigProblem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { ...YAML_OPTIONS, lineCounter: lines });
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const reason = e.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, "");
        return {
          path: "",
          message: `not valid YAML: ${reason}`,
          ...(pos ? { line: pos.line, column: pos.col } : {}),
        };
      }),
    };
  }
  return {
    value: doc.toJS(),
    locate(path) {
      const offset = nodeOffset(doc, path);
      if (offset === undefined) return undefined;
      const { line, col } = lines.linePos(offset);
      return { line, column: col };
    },
  };
}

/**
 * The text offset of the deepest node along `path`: the key of a mapping entry (so an
 * unknown field points at its name), the item of a list, else the enclosing node.
 */
function nodeOffset(doc: Document, path: ConfigPath): number | undefined {
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

function resolve(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === "string" ? key : undefined;
}
