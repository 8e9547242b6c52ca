import { addAdminToken, editConfigFile, formatEntry } from "../config/edit.ts";
import { loadConfig } from "../config/load.ts";
import { AdminTokenConfig } from "../config/schema.ts";
import { generateAdminToken, hashAdminToken, newAdminTokenId } from "./token.ts";

/** Exit code when the token was made but the file could not be edited: add the printed lines. */
export const EXIT_EDIT_BY_HAND = 3;

export interface CommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const stdio: CommandIo = { out: (l) => console.log(l), err: (l) => console.error(l) };
const ID_PATTERN = new RegExp(AdminTokenConfig.properties.id.pattern!);

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
  const edited = editConfigFile(file, (text) => addAdminToken(text, entry));
  if (opts.quiet && edited.ok) {
    io.out(token);
    return 0;
  }
  if (edited.ok) io.out(`Created admin token ${id}; its hash is in ${file}.`);
  else {
    io.err(`Could not edit ${file}: ${edited.why}. The file is unchanged.`);
    io.out(`Created admin token ${id}, NOT yet recorded. Add this to ${file}:`);
    io.out(`admin:\n  tokens:\n    - ${formatEntry({ ...entry }, false)}`);
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
