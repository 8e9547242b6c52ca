import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { basic, startTestServer, type TestServer } from "../support/server.ts";
import { natsMissing as missing, natsLogHarness } from "./nats-harness.ts";

if (missing) console.warn(`NATS server metrics tests skipped: ${missing}`);

/** A metric's value in a /metrics text (undefined: no such series). */
function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/**
 * A server with `log.backend: nats` (SPEC 9, 10): no file log in its data dir, and the
 * `sluice_log_*` metrics describe the stream (publish acks as flushes).
 */
describe.skipIf(Boolean(missing))(
  "server on the NATS log: no file log, metrics of the stream",
  () => {
    const servers: TestServer[] = [];
    // Registered first, so that it runs before the harness stops nats-server.
    afterAll(async () => {
      for (const s of servers) await s.cleanup();
    });
    const harness = natsLogHarness("appm");

    test("/metrics counts publish acks as flushes and shows the stream's size; the data dir holds no log dir", async () => {
      const nats = await harness.start();
      const opts = harness.options();
      const server = await startTestServer({
        config: {
          log: {
            backend: "nats",
            servers: [nats.url],
            stream: opts.stream,
            subjectPrefix: opts.subjectPrefix,
          },
        },
      });
      servers.push(server);
      const batch = [1, 2, 3].map((n) => ({
        type: "track",
        event: "E",
        userId: "u",
        messageId: `m${n}`,
      }));
      const res = await server.post("/v1/batch", { batch }, basic(server.keys.server));
      expect(res.status).toBe(200);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(value(text, "sluice_log_flushed_records_total")).toBe(3);
      expect(value(text, "sluice_log_flush_duration_seconds_count")).toBeGreaterThan(0);
      expect(value(text, "sluice_log_flush_duration_seconds_sum")).toBeGreaterThan(0);
      expect(value(text, "sluice_log_write_failures_total")).toBe(0);
      expect(value(text, "sluice_log_bytes")).toBeGreaterThan(0);
      expect(text).not.toContain("sluice_log_segments");
      expect(existsSync(server.dataDir)).toBe(true);
      expect(existsSync(join(server.dataDir, "log"))).toBe(false);
    });
  },
);
