import { readFileSync } from "node:fs";
import { join } from "node:path";

const README = join(import.meta.dir, "..", "..", "README.md");

/** The fenced code block of README.md right after the line holding `marker`. */
export function readmeBlock(marker: string): string {
  const readme = readFileSync(README, "utf8");
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no "${marker}"`);
  const open = readme.indexOf("```", at);
  const start = readme.indexOf("\n", open) + 1;
  const end = readme.indexOf("\n```", start);
  return readme.slice(start, end + 1);
}

/** `text` with every key of `values` replaced by its value. */
export function substitute(text: string, values: Record<string, string>): string {
  let out = text;
  for (const [from, to] of Object.entries(values)) out = out.replaceAll(from, to);
  return out;
}
