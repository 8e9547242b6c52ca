import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { exitCode } from "../support/process.ts";
import { makeTestConfig, runCli, type SpawnedServer, spawnServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

let made: ReturnType<typeof makeTestConfig>;
let server: SpawnedServer;
beforeAll(async () => {
  made = makeTestConfig();
  server = await spawnServer(made.configFile);
});
afterAll(async () => {
  server.proc.kill("SIGTERM");
  await exitCode(server.proc);
  rmSync(made.dir, { recursive: true, force: true });
});

const send = (key: string, messageId: string) =>
  fetch(`${server.url}/v1/track`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": key },
    body: JSON.stringify({ event: "Reloaded", userId: "u", messageId }),
  }).then((r) => r.status);

/** Sends SIGHUP and waits for the reload's log line (the `n`-th one). */
async function hangUp(n: number): Promise<string> {
  server.proc.kill("SIGHUP");
  const re = /"msg":"config reload(ed|ed: nothing to apply| refused[^"]*)"/;
  return waitFor(
    () =>
      server
        .output()
        .split("\n")
        .filter((l) => re.test(l))[n - 1],
    {
      what: () => `reload line ${n} after SIGHUP:\n${server.output()}`,
    },
  );
}

test("SIGHUP applies a key made by `keys create`, without a restart", async () => {
  const created = await runCli([
    "keys",
    "create",
    "--config",
    made.configFile,
    "--source",
    "web",
    "--type",
    "server",
    "--id",
    "wk_hup",
    "--quiet",
  ]);
  expect(created.code).toBe(0);
  const key = created.stdout.trim();
  expect(key).toStartWith("wk_hup:");
  expect(await send(key, "before")).toBe(401);

  const line = JSON.parse(await hangUp(1));
  expect(line.msg).toBe("config reloaded");
  expect(line.changes).toEqual(["source web: key wk_hup added (server)"]);
  expect(await send(key, "after")).toBe(200);
  expect(await send(made.keys.server, "old-key")).toBe(200);
  expect(server.output()).not.toContain(key.split(":")[1]!);
});

test("SIGHUP with a bad config refuses it, says why and keeps the running keys", async () => {
  const good = readFileSync(made.configFile, "utf8");
  const bad = JSON.parse(good);
  bad.sources[0].rateLimit = { eventsPerSecond: -5 };
  writeFileSync(made.configFile, JSON.stringify(bad, null, 2));

  const line = JSON.parse(await hangUp(2));
  expect(line.level).toBe(50);
  expect(line.msg).toStartWith("config reload refused, the running config is kept");
  const paths = line.problems.map((p: { path: string }) => p.path);
  expect(paths).toContain("sources[0].rateLimit.eventsPerSecond");
  expect(server.proc.exitCode).toBeNull();
  expect(await send(made.keys.server, "kept-1")).toBe(200);
  expect(await send(made.keys.other, "kept-2")).toBe(200);

  // Not YAML at all: refused too.
  writeFileSync(made.configFile, "sources: [ {");
  expect(JSON.parse(await hangUp(3)).msg).toContain("not valid YAML");
  expect(await send(made.keys.server, "kept-3")).toBe(200);

  // Fixed again, and a key revoked: the revoked key stops working at once.
  writeFileSync(made.configFile, good);
  const revoked = await runCli(["keys", "revoke", "--config", made.configFile, "--id", "wk_other"]);
  expect(revoked.code).toBe(0);
  const applied = JSON.parse(await hangUp(4));
  expect(applied.changes).toEqual(["source other: key wk_other removed"]);
  expect(await send(made.keys.other, "gone")).toBe(401);
  expect(await send(made.keys.server, "still")).toBe(200);
});

test("a change that needs a restart is applied live where it can be, and the rest is named", async () => {
  const config = JSON.parse(readFileSync(made.configFile, "utf8"));
  config.limits = { maxBatchEvents: 10 };
  config.sources[0].rateLimit = { eventsPerSecond: 5, burst: 7 };
  writeFileSync(made.configFile, JSON.stringify(config, null, 2));
  const line = JSON.parse(await hangUp(5));
  expect(line.changes).toEqual(["source web: rate limit 1000/s burst 5000 -> 5/s burst 7"]);
  expect(line.restartNeeded).toEqual(["limits"]);
  const res = await fetch(`${server.url}/v1/track`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-write-key": made.keys.server },
    body: JSON.stringify({ event: "x", userId: "u" }),
  });
  expect(res.headers.get("x-ratelimit-limit")).toBe("7");
});

test("SIGHUP applies server.publicUrl live: the Segment settings point at the new URL", async () => {
  const settings = async () => {
    const res = await fetch(
      `${server.url}/v1/projects/${encodeURIComponent(made.keys.browser)}/settings`,
    );
    const body = (await res.json()) as { integrations: Record<string, { apiHost: string }> };
    return body.integrations["Segment.io"]!.apiHost;
  };
  expect(await settings()).toBe(`127.0.0.1:${server.port}/v1`);
  const config = JSON.parse(readFileSync(made.configFile, "utf8"));
  config.server.publicUrl = "https://collect.example.com";
  writeFileSync(made.configFile, JSON.stringify(config, null, 2));
  const line = JSON.parse(await hangUp(6));
  expect(line.changes).toEqual(["server.publicUrl: none -> https://collect.example.com"]);
  expect(await settings()).toBe("collect.example.com/v1");
});
