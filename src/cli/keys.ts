import { readFileSync } from "node:fs";
import { generateWriteKey, hashWriteKey, newKeyId } from "../auth/keys.ts";
import {
  addWriteKey,
  editConfigFile,
  formatEntry,
  isJsonText,
  removeWriteKey,
  type WriteKeyEntry,
} from "../config/edit.ts";
import { loadConfig } from "../config/load.ts";
import { WriteKeyConfig } from "../config/schema.ts";

/** Exit code when the key was made but the file could not be edited: add the printed line. */
export const EXIT_EDIT_BY_HAND = 3;

export interface KeysIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const stdio: KeysIo = { out: (l) => console.log(l), err: (l) => console.error(l) };
const ID_PATTERN = new RegExp(WriteKeyConfig.properties.id.pattern!);
const RELOAD_HINT =
  "A running server picks this up on SIGHUP (kill -HUP <pid>) or at its next start.";

/** `sluice keys list`: ids, types and sources; never a secret, not even a hash. */
export function listKeys(
  file: string,
  opts: { source?: string; json?: boolean },
  io: KeysIo = stdio,
): number {
  const { config } = loadConfig(file);
  const rows = config.sources
    .filter((s) => opts.source === undefined || s.id === opts.source)
    .flatMap((s) =>
      s.writeKeys.map((k) => ({
        source: s.id,
        id: k.id,
        type: k.type,
        stored: k.hash !== undefined ? "hash" : "plaintext",
      })),
    );
  if (opts.source !== undefined && !config.sources.some((s) => s.id === opts.source)) {
    io.err(`unknown source: ${opts.source}`);
    return 2;
  }
  if (opts.json) {
    io.out(JSON.stringify(rows));
    return 0;
  }
  const table = [["SOURCE", "KEY ID", "TYPE", "STORED AS"], ...rows.map((r) => Object.values(r))];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  for (const row of table) io.out(line(row).trimEnd());
  if (rows.length === 0) io.out("(no write keys)");
  return 0;
}

/**
 * `sluice keys create`: a fresh `keyId:secret` key for a source. The key is printed
 * once; only its hash is written, into the source's writeKeys in the config file.
 */
export function createKey(
  file: string,
  opts: { source?: string; type?: string; id?: string; quiet?: boolean },
  io: KeysIo = stdio,
): number {
  const { config } = loadConfig(file);
  if (!opts.source || (opts.type !== "browser" && opts.type !== "server")) {
    io.err("usage: sluice keys create --source ID --type browser|server [--id ID]");
    return 2;
  }
  const source = config.sources.find((s) => s.id === opts.source);
  if (!source) {
    const known = config.sources.map((s) => s.id).join(", ") || "none";
    io.err(`unknown source: ${opts.source} (sources: ${known})`);
    return 2;
  }
  const id = opts.id ?? newKeyId(opts.type);
  if (!ID_PATTERN.test(id)) {
    io.err(`invalid key id ${JSON.stringify(id)}: use letters, digits, _ . -`);
    return 2;
  }
  const owner = config.sources.find((s) => s.writeKeys.some((k) => k.id === id));
  if (owner) {
    io.err(`key id ${id} already exists (source ${owner.id})`);
    return 2;
  }
  const key = generateWriteKey(id);
  const entry: WriteKeyEntry = { id, type: opts.type, hash: hashWriteKey(key) };
  const edited = editConfigFile(file, (text) => addWriteKey(text, source.id, entry));
  if (opts.quiet && edited.ok) {
    io.out(key);
    return 0;
  }
  if (edited.ok) {
    io.out(`Created ${entry.type} key ${id} for source ${source.id}; its hash is in ${file}.`);
  } else {
    io.err(`Could not edit ${file}: ${edited.why}. The file is unchanged.`);
    io.out(`Created ${entry.type} key ${id} for source ${source.id}, NOT yet recorded.`);
    io.out(`Add this line to the writeKeys list of source ${source.id} in ${file}:`);
    io.out(`  - ${formatEntry({ ...entry }, isJsonText(readFileSync(file, "utf8")))}`);
  }
  io.out("This key is shown only now (the file keeps only its hash):");
  io.out(`  ${key}`);
  io.out(RELOAD_HINT);
  return edited.ok ? 0 : EXIT_EDIT_BY_HAND;
}

/** `sluice keys revoke`: removes a key's entry from the config file. */
export function revokeKey(file: string, opts: { id?: string }, io: KeysIo = stdio): number {
  const { config } = loadConfig(file);
  if (!opts.id) {
    io.err("usage: sluice keys revoke --id ID");
    return 2;
  }
  const source = config.sources.find((s) => s.writeKeys.some((k) => k.id === opts.id));
  if (!source) {
    io.err(`unknown key id: ${opts.id}`);
    return 2;
  }
  const keyId = opts.id;
  const edited = editConfigFile(file, (text) => removeWriteKey(text, keyId));
  if (!edited.ok) {
    io.err(`Could not edit ${file}: ${edited.why}. The file is unchanged.`);
    io.out(`Remove the entry with id ${keyId} from the writeKeys of source ${source.id} by hand.`);
    return EXIT_EDIT_BY_HAND;
  }
  io.out(`Revoked key ${keyId} of source ${source.id} in ${file}.`);
  io.out(RELOAD_HINT);
  return 0;
}
