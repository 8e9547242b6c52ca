import { readFileSync } from "node:fs";
import { loadConfig, parseConfig } from "../config/load.ts";
import { AdminTokenConfig } from "../config/schema.ts";
import { replaceConfigFile } from "../config/write.ts";
import { generateAdminToken, hashAdminToken, newAdminTokenId } from "./token.ts";
import { addAdminToken, formatTokenEntry } from "./token-config.ts";

/** Exit code when the token was made but the file could not be edited: add the printed lines. */
export const EXIT_EDIT_BY_HAND = 3;

export interface CommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const stdio: CommandIo = { out: (l) => console.log(l), err: (l) => console.error(l) };
const ID_PATTERN = new RegExp(AdminTokenConfig.properties.id.pattern!);

/** `sluice admin --help`: the group's subcommands. */
export const ADMIN_HELP = `Usage: sluice admin token create|list [options]

  admin token create [--id ID] [--quiet]
  admin token list [--json]

Admin tokens open the event inspector (/inspector/) and its API (/admin/api/*)
to whoever holds one. With none configured, the inspector answers only on
loopback. Only a token's hash is kept, in the config file's admin.tokens.

Options:
  --config PATH         config file (else $SLUICE_CONFIG, else ./sluice.yaml)`;

export const ADMIN_CREATE_HELP = `Usage: sluice admin token create [--id ID] [--quiet] [--config PATH]

Makes an admin token for the event inspector and its API, prints it once and
writes only its hash into the config file (admin.tokens; comments and layout are
kept). Once a token exists, the inspector answers on every address but asks for
a token. A running server picks it up on SIGHUP (kill -HUP <pid>) or at restart.

Options:
  --id ID               the token's id (default: adm_<random>)
  --quiet               print the token alone
  --config PATH         config file (else $SLUICE_CONFIG, else ./sluice.yaml)`;

export const ADMIN_LIST_HELP = `Usage: sluice admin token list [--json] [--config PATH]

Lists the ids of the configured admin tokens (never a token or its hash).

Options:
  --json                JSON instead of lines
  --config PATH         config file (else $SLUICE_CONFIG, else ./sluice.yaml)`;

/**
 * `sluice admin token create`: a fresh token, printed once; its hash is added to
 * `admin.tokens` in the config file, whose comments and layout are kept.
 */
export function createAdminToken(
  file: string,
  opts: { id?: string; quiet?: boolean },
  io: CommandIo = stdio,
): number {
  const { config } = loadConfig(file);
  const id = opts.id ?? newAdminTokenId();
  if (!ID_PATTERN.test(id)) {
    io.err(`invalid token id ${JSON.stringify(id)}: use letters, digits, _ . -`);
    return 2;
  }
  if (config.admin.tokens.some((t) => t.id === id)) {
    io.err(`admin token id ${id} already exists`);
    return 2;
  }
  const token = generateAdminToken(id);
  const entry = { id, hash: hashAdminToken(token) };
  const edited = editAndCheck(file, (text) => addAdminToken(text, entry));
  if (opts.quiet && edited.ok) {
    io.out(token);
    return 0;
  }
  if (edited.ok) io.out(`Created admin token ${id}; its hash is in ${file}.`);
  else {
    io.err(`Could not edit ${file}: ${edited.why}. The file is unchanged.`);
    io.out(`Created admin token ${id}, NOT yet recorded. Add this to ${file}:`);
    io.out(`admin:\n  tokens:\n    - ${formatTokenEntry(entry, false)}`);
  }
  io.out("This token is shown only now (the file keeps only its hash):");
  io.out(`  ${token}`);
  io.out("Enter it in the inspector's sign-in box, or send it as Authorization: Bearer <token>.");
  io.out("A running server picks this up on SIGHUP (kill -HUP <pid>) or at its next start.");
  return edited.ok ? 0 : EXIT_EDIT_BY_HAND;
}

/** `sluice admin token list`: token ids only. */
export function listAdminTokens(file: string, opts: { json?: boolean }, io = stdio): number {
  const ids = loadConfig(file).config.admin.tokens.map((t) => t.id);
  if (opts.json) io.out(JSON.stringify(ids.map((id) => ({ id }))));
  else if (ids.length === 0) io.out("(no admin tokens: the inspector answers only on loopback)");
  else for (const id of ids) io.out(id);
  return 0;
}

/** Applies a text edit if it yields a config that still loads; else says why not. */
function editAndCheck(
  file: string,
  edit: (text: string) => string | undefined,
): { ok: true } | { ok: false; why: string } {
  const edited = edit(readFileSync(file, "utf8"));
  if (edited === undefined) return { ok: false, why: "its layout defeats a safe edit" };
  try {
    parseConfig(Bun.YAML.parse(edited), file);
  } catch {
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
