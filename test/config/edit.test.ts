import { describe, expect, test } from "bun:test";
import {
  addAdminToken,
  addWriteKey,
  removeAdminToken,
  removeWriteKey,
  type WriteKeyEntry,
} from "../../src/config/edit.ts";
import { parseConfig } from "../../src/config/load.ts";

const H = (c: string) => `sha256:${c.repeat(64)}`;
const NEW: WriteKeyEntry = { id: "wk_new", type: "server", hash: H("e") };

/** The write keys of each source, as the loader sees the text. */
function keysOf(text: string) {
  const { config } = parseConfig(Bun.YAML.parse(text), "/tmp/sluice.yaml", {});
  return Object.fromEntries(config.sources.map((s) => [s.id, s.writeKeys.map((k) => k.id)]));
}

/** Lines of `after` that are not in `before` (and the reverse), as multisets. */
function lineDiff(before: string, after: string) {
  const count = (t: string) => {
    const m = new Map<string, number>();
    for (const l of t.split("\n")) m.set(l, (m.get(l) ?? 0) + 1);
    return m;
  };
  const a = count(before);
  const b = count(after);
  const added = [...b].flatMap(([l, n]) => Array(Math.max(0, n - (a.get(l) ?? 0))).fill(l));
  const removed = [...a].flatMap(([l, n]) => Array(Math.max(0, n - (b.get(l) ?? 0))).fill(l));
  return { added, removed };
}

const INIT_STYLE = `# sluice configuration. Reference: README.md, "Configuration".
server:
  port: 8080
sources:
  - id: default
    name: Default source # the first one
    rateLimit: { eventsPerSecond: 1000, burst: 5000 }
    writeKeys:
      # Only hashes are stored. writeKeys: never plaintext.
      - { id: browser_1, type: browser, hash: "${H("a")}" }
      - { id: server_1, type: server, hash: "${H("b")}" }

  # a second source
  - id: api
    writeKeys:
      - { id: api_1, type: server, hash: "${H("c")}" }
connections: []
`;

const BLOCK_STYLE = `sources:
- id: web
  writeKeys:
  - id: a
    type: server
    hash: "${H("a")}"
  # keep me
  - type: browser
    id: b
    key: "b:plaintext-secret"
  rateLimit:
    burst: 10
- id: other
  writeKeys:
    - id: c
      type: server
      hash: ${H("c")}
`;

const JSON_STYLE = JSON.stringify(
  {
    server: { port: 0 },
    sources: [
      {
        id: "web",
        writeKeys: [
          { id: "a", type: "server", hash: H("a") },
          { id: "b", type: "browser", hash: H("b") },
        ],
      },
      { id: "other", writeKeys: [{ id: "c", type: "server", hash: H("c") }] },
      { id: "empty", writeKeys: [] },
    ],
  },
  null,
  2,
);

const FLOW_STYLE = `sources:
  - { id: web, writeKeys: [{ id: a, type: server, hash: "${H("a")}" }, { id: b, type: server, hash: "${H("b")}" }] }
  - id: bare # no keys yet
    name: Bare
`;

describe("addWriteKey", () => {
  test("init style: one line added under the right source, comments kept", () => {
    const out = addWriteKey(INIT_STYLE, "default", NEW)!;
    expect(keysOf(out)).toEqual({ default: ["browser_1", "server_1", "wk_new"], api: ["api_1"] });
    expect(lineDiff(INIT_STYLE, out)).toEqual({
      added: [`      - { id: wk_new, type: server, hash: "${H("e")}" }`],
      removed: [],
    });
    expect(out.indexOf("wk_new")).toBeLessThan(out.indexOf("# a second source"));
  });

  test("init style, second source", () => {
    const out = addWriteKey(INIT_STYLE, "api", NEW)!;
    expect(keysOf(out)).toEqual({ default: ["browser_1", "server_1"], api: ["api_1", "wk_new"] });
    expect(lineDiff(INIT_STYLE, out).removed).toEqual([]);
  });

  test("block mappings with items at the key's indent: a block item like the one before", () => {
    const out = addWriteKey(BLOCK_STYLE, "web", NEW)!;
    expect(keysOf(out)).toEqual({ web: ["a", "b", "wk_new"], other: ["c"] });
    expect(out).toContain(
      `    key: "b:plaintext-secret"\n  - id: wk_new\n    type: server\n    hash: "${H("e")}"\n  rateLimit:`,
    );
    expect(lineDiff(BLOCK_STYLE, out).removed).toEqual([]);
  });

  test("JSON: a JSON object in the list's layout; still JSON", () => {
    for (const source of ["web", "other", "empty"]) {
      const out = addWriteKey(JSON_STYLE, source, NEW)!;
      expect(out).toBeDefined();
      const parsed = JSON.parse(out);
      const keys = parsed.sources.find((s: { id: string }) => s.id === source).writeKeys;
      expect(keys.at(-1)).toEqual(NEW);
    }
    const out = addWriteKey(JSON_STYLE, "web", NEW)!;
    expect(out).toContain(
      `,\n        { "id": "wk_new", "type": "server", "hash": "${H("e")}" }\n      ]`,
    );
  });

  test("flow lists and a source with no writeKeys field", () => {
    const a = addWriteKey(FLOW_STYLE, "web", NEW)!;
    expect(keysOf(a)).toEqual({ web: ["a", "b", "wk_new"], bare: [] });
    const b = addWriteKey(FLOW_STYLE, "bare", NEW)!;
    expect(keysOf(b)).toEqual({ web: ["a", "b"], bare: ["wk_new"] });
    expect(b).toContain("# no keys yet");
  });

  test("CRLF files stay CRLF", () => {
    const crlf = INIT_STYLE.replace(/\n/g, "\r\n");
    const out = addWriteKey(crlf, "default", NEW)!;
    expect(keysOf(out).default).toEqual(["browser_1", "server_1", "wk_new"]);
    expect(out.replace(/\r\n/g, "")).not.toContain("\n");
  });

  test("ids that YAML would read as another type are quoted", () => {
    const out = addWriteKey(INIT_STYLE, "default", { ...NEW, id: "123" })!;
    expect(out).toContain('id: "123"');
    expect(keysOf(out).default).toContain("123");
  });

  test("unknown source: undefined", () => {
    expect(addWriteKey(INIT_STYLE, "nope", NEW)).toBeUndefined();
  });
});

describe("removeWriteKey", () => {
  test("init style: exactly the key's line goes", () => {
    const out = removeWriteKey(INIT_STYLE, "server_1")!;
    expect(keysOf(out)).toEqual({ default: ["browser_1"], api: ["api_1"] });
    expect(lineDiff(INIT_STYLE, out).added).toEqual([]);
    expect(lineDiff(INIT_STYLE, out).removed).toHaveLength(1);
  });

  test("the last key of a list leaves writeKeys: []", () => {
    const out = removeWriteKey(INIT_STYLE, "api_1")!;
    expect(keysOf(out)).toEqual({ default: ["browser_1", "server_1"], api: [] });
    expect(out).toContain("# a second source");
  });

  test("block mappings, the id first or not", () => {
    const a = removeWriteKey(BLOCK_STYLE, "a")!;
    expect(keysOf(a)).toEqual({ web: ["b"], other: ["c"] });
    expect(a).toContain("# keep me");
    const b = removeWriteKey(BLOCK_STYLE, "b")!;
    expect(keysOf(b)).toEqual({ web: ["a"], other: ["c"] });
    expect(b).toContain("rateLimit:");
    const c = removeWriteKey(BLOCK_STYLE, "c")!;
    expect(keysOf(c)).toEqual({ web: ["a", "b"], other: [] });
  });

  test("JSON: first, last and only items", () => {
    const cases: [string, Record<string, string[]>][] = [
      ["a", { web: ["b"], other: ["c"], empty: [] }],
      ["b", { web: ["a"], other: ["c"], empty: [] }],
      ["c", { web: ["a", "b"], other: [], empty: [] }],
    ];
    for (const [id, expected] of cases) {
      const out = removeWriteKey(JSON_STYLE, id)!;
      expect(keysOf(out)).toEqual(expected);
      JSON.parse(out);
    }
  });

  test("flow lists", () => {
    const out = removeWriteKey(FLOW_STYLE, "a")!;
    expect(keysOf(out)).toEqual({ web: ["b"], bare: [] });
  });

  test("unknown key: undefined", () => {
    expect(removeWriteKey(INIT_STYLE, "nope")).toBeUndefined();
  });
});

// Every byte of the file but the edited lines is kept: the yaml Document finds the
// places, the edit is spliced in (printing the Document again would re-indent lists,
// pad brackets, and put a JSON file on one line).
const COMMENTED = `# top comment
server:
  port: 8080 # the port

sources:
  - id: web
    writeKeys: # none yet
  - id: two
    writeKeys: ~
  - id: three
    name: x
# trailing comment
`;

/** `text` with `lines` inserted after the line that is exactly `after`. */
function insertAfter(text: string, after: string, ...lines: string[]) {
  const at = text.indexOf(`${after}\n`) + after.length + 1;
  expect(at).toBeGreaterThan(after.length);
  return text.slice(0, at) + lines.map((l) => `${l}\n`).join("") + text.slice(at);
}

describe("edits keep the rest of the file byte for byte", () => {
  const item = `{ id: wk_new, type: server, hash: "${H("e")}" }`;

  test("a commented file: a bare `writeKeys:`, a `~`, a source without writeKeys", () => {
    expect(addWriteKey(COMMENTED, "web", NEW)).toBe(
      insertAfter(COMMENTED, "    writeKeys: # none yet", `      - ${item}`),
    );
    expect(addWriteKey(COMMENTED, "two", NEW)).toBe(
      COMMENTED.replace("    writeKeys: ~", `    writeKeys: [${item}]`),
    );
    expect(addWriteKey(COMMENTED, "three", NEW)).toBe(
      insertAfter(COMMENTED, "    name: x", "    writeKeys:", `      - ${item}`),
    );
  });

  test("a JSON file stays JSON, every other line as it was", () => {
    const text = `${JSON_STYLE}\n`;
    const added = addWriteKey(text, "other", NEW)!;
    expect(added).toBe(
      text.replace(
        `"hash": "${H("c")}"\n        }`,
        `"hash": "${H("c")}"\n        },\n        { "id": "wk_new", "type": "server", "hash": "${H("e")}" }`,
      ),
    );
    expect(JSON.parse(added).sources[1].writeKeys).toHaveLength(2);
    // Taking it out again gives the original file back.
    expect(removeWriteKey(added, "wk_new")).toBe(text);
  });

  test("add then revoke gives back the original, byte for byte, in every style", () => {
    const cases: [string, string[]][] = [
      [INIT_STYLE, ["default", "api"]],
      [BLOCK_STYLE, ["web", "other"]],
      [FLOW_STYLE, ["web"]],
      [JSON_STYLE, ["web", "other"]],
      [INIT_STYLE.replace(/\n/g, "\r\n"), ["default", "api"]],
    ];
    for (const [text, sources] of cases) {
      for (const source of sources) {
        const added = addWriteKey(text, source, NEW)!;
        expect(keysOf(added)[source]).toContain("wk_new");
        expect(removeWriteKey(added, "wk_new")).toBe(text);
      }
    }
  });

  test("an aliased list is not edited: the change would reach every use of its anchor", () => {
    const text = `sources:\n  - id: web\n    writeKeys: &none []\n  - id: other\n    writeKeys: *none\n`;
    expect(addWriteKey(text, "web", NEW)).toBeUndefined();
    expect(addWriteKey(text, "other", NEW)).toBeUndefined();
  });
});

describe("admin tokens (admin.tokens, made when missing)", () => {
  const TOKEN = { id: "ops", hash: H("f") };
  const line = `{ id: ops, hash: "${H("f")}" }`;

  test("YAML without admin: added at the end of the top level, before a trailing comment", () => {
    expect(addAdminToken(COMMENTED, TOKEN)).toBe(
      insertAfter(COMMENTED, "    name: x", "admin:", "  tokens:", `    - ${line}`),
    );
    expect(addAdminToken("admin:\nsources: []\n", TOKEN)).toBe(
      `admin:\n  tokens:\n    - ${line}\nsources: []\n`,
    );
    expect(addAdminToken("# only a comment\n", TOKEN)).toBe(
      `# only a comment\nadmin:\n  tokens:\n    - ${line}\n`,
    );
  });

  test("a second token goes after the first; removing the last leaves tokens: []", () => {
    const one = addAdminToken(COMMENTED, TOKEN)!;
    const two = addAdminToken(one, { id: "ci", hash: H("a") })!;
    expect(two).toBe(insertAfter(one, `    - ${line}`, `    - { id: ci, hash: "${H("a")}" }`));
    expect(removeAdminToken(two, "ci")).toBe(one);
    const none = removeAdminToken(one, "ops")!;
    expect(none).toContain("admin:\n  tokens: []\n# trailing comment");
    expect(removeAdminToken(none, "ops")).toBeUndefined();
  });

  test("JSON: a JSON member, still JSON", () => {
    const text = `${JSON_STYLE}\n`;
    const out = addAdminToken(text, TOKEN)!;
    expect(JSON.parse(out).admin).toEqual({ tokens: [TOKEN] });
    expect(out).toBe(
      text.replace(
        /\n}\n$/,
        `,\n  "admin": { "tokens": [{ "id": "ops", "hash": "${H("f")}" }] }\n}\n`,
      ),
    );
  });
});
