import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { makeTestConfig, runCli } from "../support/server.ts";

const made = makeTestConfig({
  files: {
    "functions/good.ts": "export default (e: { n?: number }) => ({ ...e, n: 1 });",
    "functions/syntax.ts": "export default (e: any) => { e.x = ; };",
    "functions/no-default.js": "export const notDefault = 1;",
    "functions/throws.js": "throw new Error('cannot start');",
  },
  config: {
    functions: [
      { id: "good", file: "./functions/good.ts" },
      { id: "syntax", file: "./functions/syntax.ts" },
      { id: "nodefault", file: "./functions/no-default.js" },
      { id: "throws", file: "./functions/throws.js" },
      { id: "missing", file: "./functions/missing.js" },
    ],
    connections: [
      {
        id: "c1",
        source: "web",
        destination: { type: "device" },
        functions: ["good", "syntax", "nodefault", "throws", "missing"],
      },
    ],
  },
});
afterAll(() => rmSync(made.dir, { recursive: true, force: true }));

test("check reports each function file that fails to load, with its path and error", async () => {
  const res = await runCli(["check", "--config", made.configFile]);
  expect(res.code).toBe(2);
  const lines = res.stderr.trim().split("\n");
  const line = (id: string) => lines.find((l) => l.startsWith(`function ${id} `)) ?? "";
  const path = (name: string) => join(made.dir, "functions", name);
  expect(line("syntax")).toContain(path("syntax.ts"));
  expect(line("syntax")).toContain("SyntaxError");
  expect(line("syntax")).toContain("line 1");
  expect(line("nodefault")).toContain(path("no-default.js"));
  expect(line("nodefault")).toContain("no default export");
  expect(line("throws")).toContain("cannot start");
  expect(line("missing")).toContain(path("missing.js"));
  expect(line("good")).toBe("");
  expect(res.stdout).not.toContain("is valid");
});
