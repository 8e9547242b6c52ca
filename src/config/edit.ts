/**
 * The config edits the CLI makes (`keys create`, `keys revoke`, `admin token create`),
 * each one call of the generic list edits in yaml-edit.ts, which keep the rest of the
 * file byte for byte. To add an editor: find the list's path in the parsed file, then
 * appendToList / removeFromList; editConfigFile validates and writes the result.
 */

import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { ConfigError, parseConfig } from "./load.ts";
import { replaceConfigFile } from "./write.ts";
import { parseConfigText, YAML_OPTIONS } from "./yaml.ts";
import { appendToList, type Entry, removeFromList, scalar } from "./yaml-edit.ts";

/** A write key entry as the config file stores it. */
export interface WriteKeyEntry {
  id: string;
  type: "browser" | "server";
  hash: string;
}

/** An admin API token as the config file stores it (`admin.tokens`): its hash only. */
export interface AdminTokenEntry {
  id: string;
  hash: string;
}

type Raw = {
  sources?: { id?: unknown; writeKeys?: { id?: unknown }[] }[];
  admin?: { tokens?: { id?: unknown }[] };
};

/** An entry as one line in the file's style (YAML flow mapping or JSON), to add by hand. */
export function formatEntry(entry: Entry, json: boolean): string {
  const fields = Object.entries(entry).map(([k, v]) =>
    json ? `${JSON.stringify(k)}: ${JSON.stringify(v)}` : `${k}: ${scalar(v, undefined)}`,
  );
  return `{ ${fields.join(", ")} }`;
}

/** `text` with `entry` appended to the writeKeys of source `sourceId`, or undefined. */
export function addWriteKey(
  text: string,
  sourceId: string,
  entry: WriteKeyEntry,
): string | undefined {
  const i = read(text)?.sources?.findIndex((s) => s?.id === sourceId) ?? -1;
  if (i < 0) return undefined;
  return appendToList(text, ["sources", i, "writeKeys"], { ...entry });
}

/** `text` without the write key `keyId` (whichever source has it), or undefined. */
export function removeWriteKey(text: string, keyId: string): string | undefined {
  const sources = read(text)?.sources ?? [];
  for (const [i, source] of sources.entries()) {
    const j = Array.isArray(source?.writeKeys)
      ? source.writeKeys.findIndex((k) => k?.id === keyId)
      : -1;
    if (j >= 0) return removeFromList(text, ["sources", i, "writeKeys", j]);
  }
  return undefined;
}

/** `text` with `entry` appended to `admin.tokens` (made when missing), or undefined. */
export function addAdminToken(text: string, entry: AdminTokenEntry): string | undefined {
  return appendToList(text, ["admin", "tokens"], { ...entry });
}

/** `text` without the admin token `id`, or undefined. */
export function removeAdminToken(text: string, id: string): string | undefined {
  const tokens = read(text)?.admin?.tokens;
  const i = Array.isArray(tokens) ? tokens.findIndex((t) => t?.id === id) : -1;
  return i < 0 ? undefined : removeFromList(text, ["admin", "tokens", i]);
}

/** Whether a config file's text is JSON (edits and hand-edit hints keep it JSON). */
export function isJsonText(text: string): boolean {
  return text.replace(/^(\s|#.*)*/, "").startsWith("{");
}

/**
 * Applies an edit to a config file if it yields a config that still loads, writing it
 * atomically. Says why not otherwise: no safe edit found, the result would not
 * validate, or the file could not be written (read-only mount).
 */
export function editConfigFile(
  file: string,
  edit: (text: string) => string | undefined,
): { ok: true } | { ok: false; why: string } {
  const edited = edit(readFileSync(file, "utf8"));
  if (edited === undefined) return { ok: false, why: "its layout defeats a safe edit" };
  const parsed = parseConfigText(edited);
  try {
    if ("problems" in parsed) throw new ConfigError(file, parsed.problems);
    parseConfig(parsed.value, file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { ok: false, why: "the edit would not validate" };
  }
  try {
    replaceConfigFile(file, edited);
  } catch (err) {
    return {
      ok: false,
      why: `it cannot be written (${(err as NodeJS.ErrnoException).code ?? err})`,
    };
  }
  return { ok: true };
}

function read(text: string): Raw | undefined {
  try {
    const v = parse(text, YAML_OPTIONS);
    return typeof v === "object" && v !== null ? (v as Raw) : undefined;
  } catch {
    return undefined;
  }
}
