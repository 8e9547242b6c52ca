import { VERSION } from "../version.ts";

const CONFIG = `  --config PATH         config file (else $SLUICE_CONFIG, else ./sluice.yaml)`;

/** `sluice admin --help`: the group's subcommands. */
const ADMIN_HELP = `Usage: sluice admin token create|list [options]

  admin token create [--id ID] [--quiet]
  admin token list [--json]

Admin tokens open the event inspector (/inspector/) and its API (/admin/api/*)
to whoever holds one. With none configured, the inspector answers only on
loopback. Only a token's hash is kept, in the config file's admin.tokens.

Options:
${CONFIG}`;

const ADMIN_CREATE_HELP = `Usage: sluice admin token create [--id ID] [--quiet] [--config PATH]

Makes an admin token for the event inspector and its API, prints it once and
writes only its hash into the config file (admin.tokens; comments and layout are
kept). Once a token exists, the inspector answers on every address but asks for
a token. A running server picks it up on SIGHUP (kill -HUP <pid>) or at restart.

Options:
  --id ID               the token's id (default: adm_<random>)
  --quiet               print the token alone
${CONFIG}`;

const ADMIN_LIST_HELP = `Usage: sluice admin token list [--json] [--config PATH]

Lists the ids of the configured admin tokens (never a token or its hash).

Options:
  --json                JSON instead of lines
${CONFIG}`;

export const HELP = `sluice ${VERSION}: a self-hosted event collection server

Usage: sluice <command> [options]

Commands:
  serve                 start the server (creates ./sluice.yaml with fresh keys if missing)
  init                  write ./sluice.yaml with one source and fresh keys (never overwrites)
  check                 validate the config file and exit
  keys list             list write keys: ids, types, sources (never secrets)
  keys create           make a write key for a source and record its hash in the config
      --source ID --type browser|server [--id ID]
  keys revoke --id ID   remove a write key from the config
  admin token create    make an admin token for the event inspector (printed once)
  admin token list      list admin token ids
  log tail              print stored events as NDJSON
      [--from-start] [--follow|-f] [--source ID] [-n N (default 10)]
  log verify            check every record (checksums; NATS: each message); exit 1 on a bad one
  connections [--json]  each connection's delivery lag (events, seconds) and dead letters
  deadletters list      a connection's dead letters: --connection ID [--json]
  deadletters redrive   send them again: --connection ID (--all | --id ID[,ID…])
  replay                re-send stored events: --connection ID --from TIME|POSITION [--to …]
  health                ask a running server's /health; exit 0 if it answers (for Docker)
  help COMMAND          the same as sluice COMMAND --help

Options:
${CONFIG}
  --help, -h            help for any command: sluice keys create --help
  --version             print the version

Environment: PORT, SLUICE_DATA_DIR, SLUICE_LOG_LEVEL, SLUICE_LOG_FORMAT (json|pretty),
SLUICE_CONFIG. Exit codes: 0 ok, 1 failure, 2 bad config or usage.`;

const COMMANDS: Record<string, string> = {
  serve: `Usage: sluice serve [--config PATH]

Starts the server. Without a config file (and without --config or $SLUICE_CONFIG),
writes ./sluice.yaml with one source and a fresh browser key and server key, prints
both keys once, and starts.

Signals: SIGTERM / SIGINT stop gracefully (in-flight requests finish, the log is
flushed; exit 0). SIGHUP reloads the config file: sources, write keys, rate limits,
allowed origins, server.trustProxy, logger, admin tokens and connections (added,
removed, a changed destination) apply at once and the log says what changed; a
config that does not validate is refused and the running one kept. Port, host, data
dir, limits, dedup, log, functions and a connection's functions/options/env need a
restart.

Options:
${CONFIG}

Environment: PORT, SLUICE_DATA_DIR, SLUICE_LOG_LEVEL, SLUICE_LOG_FORMAT (json|pretty;
default: pretty on a terminal, JSON otherwise).`,
  init: `Usage: sluice init [--config PATH]

Writes a starter config (one source, a fresh browser key and server key) and prints
the two keys once; the file keeps only their hashes. Refuses to overwrite a file.

Options:
${CONFIG}`,
  check: `Usage: sluice check [--config PATH]

Validates the config file and prints a summary. Every problem is listed with its
path and reason; exit code 2 when the file is invalid.

Options:
${CONFIG}`,
  keys: `Usage: sluice keys list|create|revoke [options]

  keys list [--source ID] [--json]
  keys create --source ID --type browser|server [--id ID] [--quiet]
  keys revoke --id ID

Keys are edited in the config file in place; its comments and layout are kept.
A running server applies the change on SIGHUP (kill -HUP <pid>) or at restart.
See sluice keys <subcommand> --help.

Options:
${CONFIG}`,
  "keys list": `Usage: sluice keys list [--source ID] [--json] [--config PATH]

Lists the write keys of every source (or of one): source, key id, type (browser or
server) and how it is stored (hash, or plaintext for development). Never prints a
key or its hash.

Options:
  --source ID           only this source's keys
  --json                one JSON array instead of a table
${CONFIG}`,
  "keys create": `Usage: sluice keys create --source ID --type browser|server [--id ID] [--config PATH]

Makes a new write key \`keyId:secret\` for the source, prints it once, and appends
its SHA-256 hash to the source's writeKeys in the config file (comments and layout
kept). If the file's shape defeats a safe edit, the file is left unchanged, the line
to add is printed, and the exit code is 3.

Options:
  --source ID           the source the key belongs to
  --type browser|server browser keys may be used from web pages (CORS applies);
                        server keys are for backends
  --id ID               the key id (letters, digits, _ . -); default: <type>_<random>
  --quiet               print only the key (for scripts)
${CONFIG}`,
  "keys revoke": `Usage: sluice keys revoke --id ID [--config PATH]

Removes the write key with this id from the config file (comments and layout kept).
A running server stops accepting it on SIGHUP or at restart. If the file's shape
defeats a safe edit, the file is left unchanged and the exit code is 3.

Options:
  --id ID               the key id (see sluice keys list)
${CONFIG}`,
  log: `Usage: sluice log tail|verify [options]

  log tail [--from-start] [--follow|-f] [--source ID] [-n N]
  log verify

See sluice log <subcommand> --help.`,
  "log tail": `Usage: sluice log tail [--from-start] [--follow|-f] [--source ID] [-n N] [--config PATH]

Prints stored events as NDJSON, one per line: the last N (default 10), or all of
them with --from-start; --follow keeps printing new ones. Reads the data dir of the
config (with log.backend nats: the stream); works while the server runs.

Options:
  --from-start          every stored event, oldest first
  --follow, -f          keep printing events as they are stored
  --source ID           only this source's events
  -n N                  how many of the last events (default 10)
${CONFIG}`,
  "log verify": `Usage: sluice log verify [--config PATH]

Checks every record's length and checksum in every segment of the event log.
With log.backend nats: reads every message of the stream and checks that it is a
stored event of the source its subject names, with the Nats-Msg-Id and Sluice-Type
headers sluice gives it (JetStream checks its own storage).
Exit code 1 when a bad record is found.

Options:
${CONFIG}`,
  connections: `Usage: sluice connections [--json] [--config PATH]

Shows each connection's delivery lag (events and seconds behind the log) and its
dead letters.

Options:
  --json                JSON instead of a table
${CONFIG}`,
  admin: ADMIN_HELP,
  "admin token": ADMIN_HELP,
  "admin token create": ADMIN_CREATE_HELP,
  "admin token list": ADMIN_LIST_HELP,
  deadletters: `Usage: sluice deadletters list|redrive --connection ID [options]

  deadletters list --connection ID [--json] [--limit N]
  deadletters redrive --connection ID (--all | --id ID[,ID…])

See sluice deadletters <subcommand> --help.`,
  "deadletters list": `Usage: sluice deadletters list --connection ID [--json] [--limit N] [--config PATH]

The batches the connection could not deliver, oldest first: id, when, events,
attempts, what refused them (the destination, or the functions) and its answer.
Reads the data dir; works whether the server runs or not. Exit code 2 for an
unknown connection (the known ids are listed).

Options:
  --connection ID       the connection
  --json                the letters as JSON, events included
  --limit N             at most N letters (default 1000)
${CONFIG}`,
  "deadletters redrive": `Usage: sluice deadletters redrive --connection ID (--all | --id ID[,ID…]) [--config PATH]

Sends dead letters again, once each, through the connection's functions (when they
were what failed) to its destination; a webhook gets the same Idempotency-Key as
before. Delivered letters are removed; one that fails again stays with the new
error; a destination still down ends the redrive and the rest stay as they are.
Works whether the server runs or not (it never moves a connection's offset).
Exit code 0 when every letter asked for was delivered, 1 otherwise.

Options:
  --connection ID       the connection
  --all                 every dead letter of the connection
  --id ID[,ID…]         these letters (ids from sluice deadletters list)
${CONFIG}`,
  replay: `Usage: sluice replay --connection ID --from TIME|POSITION [--to TIME|POSITION] [--config PATH]

Re-sends the connection's stored events in a range through its functions to its
destination, without moving the connection's own offset. A webhook gets the same
Idempotency-Key as for the first delivery of the same events; PostgreSQL keeps one
row per messageId. A TIME is ISO-8601 (2026-12-01, 2026-12-01T09:00:00Z): events
received in [from, to). A POSITION is a point between two events in the log
(<segment>:<offset>; an event's position in the inspector is the point just before
it; with log.backend nats a stream sequence number, and the stream is read): from starts with the event after it, to ends with the event before it, so
--from P1 --to P2 covers the event at P1 up to the one before P2. Without --to: up to what
is stored when the replay starts. Shows a progress bar on a terminal and a summary at
the end; Ctrl-C stops between events. Works whether the server runs or not.
Exit code 0 when every event went out (or the range held none), 1 when some did
not, 2 for an unknown connection (the known ids are listed).

Options:
  --connection ID       the connection
  --from TIME|POSITION  where the range starts
  --to TIME|POSITION    where it ends (default: now)
${CONFIG}`,
  health: `Usage: sluice health [--url URL] [--config PATH]

Asks a running server's /health and exits 0 when it answers 200, 1 otherwise (a
Docker HEALTHCHECK that needs no curl). Default URL: http://127.0.0.1:<port>/health,
the port from $PORT, else the config file, else 8080.

Options:
  --url URL             the URL to ask
${CONFIG}`,
};

/** Help for `sluice <words…>`: the most specific text known, else the overview. */
export function helpText(words: string[]): string {
  for (let n = Math.min(words.length, 3); n > 0; n--) {
    const text = COMMANDS[words.slice(0, n).join(" ")];
    if (text) return text;
  }
  return HELP;
}

/**
 * The short usage shown under a command-line mistake: the first paragraph of the
 * command's help (its Usage line) and where the rest is.
 */
export function usageOf(words: string[]): string {
  const text = helpText(words);
  if (text === HELP) return HELP;
  // A group (keys, log): its help is the list of its subcommands.
  if (Object.keys(COMMANDS).some((name) => name.startsWith(`${words.join(" ")} `))) return text;
  const usage = text.split("\n\n")[0]!;
  const more = ["sluice", ...words, "--help"].join(" ");
  return `${usage}\n\nMore: ${more}`;
}
