import { readFileSync } from "node:fs";
import type { Scenario } from "../scenarios.ts";
import { EVENT_TEMPLATE } from "./gzip-pool.ts";
import type { BenchServer } from "./servers.ts";

const TEMPLATE = readFileSync(EVENT_TEMPLATE, "utf8").trim();

/** One request shaped like the scenario's load (two events for batches). */
export async function sendOne(
  server: BenchServer,
  scenario: Scenario,
  id: string,
): Promise<{ status: number; body: string }> {
  const event = (n: number) => TEMPLATE.replace("@ID@", `${id}-${n}`);
  const text = scenario.mode === "single" ? event(1) : `{"batch":[${event(1)},${event(2)}]}`;
  const body = scenario.mode === "gzip" ? Bun.gzipSync(text) : text;
  const res = await fetch(`${server.url}${scenario.path}`, {
    method: "POST",
    headers: scenario.headers(server.keys),
    body,
  });
  return { status: res.status, body: await res.text() };
}

/**
 * Checks that sluice answers the scenario as intended before loading it: 200 with the
 * events accepted, or 429 on the rate-limited source. Throws with the answer otherwise.
 */
export async function preflight(server: BenchServer, scenario: Scenario): Promise<void> {
  const first = await sendOne(server, scenario, `preflight-${Date.now()}`);
  const second = await sendOne(server, scenario, `preflight2-${Date.now()}`);
  const ok =
    scenario.expect === 429
      ? second.status === 429
      : first.status === 200 && (scenario.size === 1 || first.body.includes('"accepted":2'));
  if (!ok) {
    throw new Error(
      `${scenario.name}: expected ${scenario.expect}, got ${first.status} ${first.body} / ` +
        `${second.status} ${second.body}`,
    );
  }
}

/** Whether `POST /api/funcs/:conId` exists yet (another issue builds it). */
export async function functionsAvailable(server: BenchServer, scenario: Scenario) {
  const { status } = await sendOne(server, scenario, `probe-${Date.now()}`);
  return status !== 404;
}
