import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readmeBlock, substitute } from "../support/readme.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { storedWithId } from "./table.ts";

// README's server-SDK recipe, run as written: Segment's Node client with `host` only.

const ROOT = join(import.meta.dir, "..", "..");
let s: TestServer;
let dir: string;
beforeAll(async () => {
  s = await startTestServer();
  mkdirSync(join(ROOT, "node_modules", ".cache"), { recursive: true });
  dir = mkdtempSync(join(ROOT, "node_modules", ".cache", "sluice-recipe-"));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await s.cleanup();
});

test("README's @segment/analytics-node recipe stores what it sends", async () => {
  const recipe = substitute(readmeBlock("<!-- recipe: segment-node -->"), {
    YOUR_SERVER_KEY: s.keys.server,
    "https://events.example.com": s.url,
  });
  const file = join(dir, "recipe.mjs");
  writeFileSync(file, recipe);
  const { analytics } = await import(file);
  const messageId = `node-recipe-${crypto.randomUUID()}`;
  analytics.track({ userId: "u1", event: "Ordered", properties: { total: 9 }, messageId });
  await analytics.closeAndFlush({ timeout: 10_000 });
  expect(await storedWithId(s, messageId)).toMatchObject([
    { type: "track", event: "Ordered", properties: { total: 9 }, keyId: "wk_server" },
  ]);
});
