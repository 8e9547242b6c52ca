import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, extname, join, relative } from "node:path";
import { isInside } from "./paths.ts";

/**
 * A hash of a function's code: its file and every file it imports from its folder,
 * transitively (the import graph as Bun's transpiler reads it), plus the
 * package.json of each package it imports. So a change to another function sharing
 * the folder does not count as a change of this one, and a reload restarts only the
 * hosts whose code changed.
 */
export function codeHash(entry: string, root: string): string {
  const hash = createHash("sha256");
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file) || !isInside(file, root)) return;
    seen.add(file);
    let code: Buffer;
    try {
      code = readFileSync(file);
    } catch {
      return;
    }
    hash.update(`${relative(root, file)}\0${code.length}\0`);
    hash.update(code);
    for (const spec of importsOf(file, code)) {
      if (spec.startsWith(".") || spec.startsWith("/")) {
        const resolved = resolveImport(spec, dirname(file));
        if (resolved) visit(resolved);
      } else if (!spec.includes(":")) {
        const name = spec.startsWith("@")
          ? spec.split("/").slice(0, 2).join("/")
          : spec.split("/")[0]!;
        visit(join(root, "node_modules", name, "package.json"));
      }
    }
  };
  visit(entry);
  return hash.digest("hex");
}

const LOADERS: Record<string, "js" | "jsx" | "ts" | "tsx"> = {
  ".js": "js",
  ".mjs": "js",
  ".cjs": "js",
  ".jsx": "jsx",
  ".ts": "ts",
  ".mts": "ts",
  ".cts": "ts",
  ".tsx": "tsx",
};

function importsOf(file: string, code: Buffer): string[] {
  const loader = LOADERS[extname(file)];
  if (!loader) return [];
  try {
    return new Bun.Transpiler({ loader }).scanImports(code.toString()).map((i) => i.path);
  } catch {
    return []; // a syntax error: the host will say so when it loads the file
  }
}

function resolveImport(spec: string, from: string): string | undefined {
  try {
    return Bun.resolveSync(spec, from);
  } catch {
    return undefined;
  }
}
