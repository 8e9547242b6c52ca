import { describe, expect, test } from "bun:test";
import { verifyNatsLog } from "../../src/cli/log-nats.ts";
import { natsMissing as missing, natsLogHarness, rec } from "./nats-harness.ts";

if (missing) console.warn(`NATS verify tests skipped: ${missing}`);

describe.skipIf(Boolean(missing))("sluice log verify on NATS: coverage", () => {
  const { start, options, openLog } = natsLogHarness("ver");

  test("a server that stops giving messages makes the check incomplete, not ok", async () => {
    await start();
    const opts = options();
    const log = await openLog(opts);
    await log.append(Array.from({ length: 20 }, (_, n) => rec(n)));
    let fetches = 0;
    const report = await verifyNatsLog(opts, {
      // The first page has 5, then nothing comes (a slow server's empty fetches).
      fetch: (c, o) => {
        fetches++;
        if (fetches === 1) return c.fetch({ ...o, max_messages: 5 });
        return Promise.resolve((async function* () {})());
      },
    });
    expect(report.messages).toBe(5);
    expect(report.incomplete).toContain("seq 6 to 20 not checked");
    expect(fetches).toBe(4);
    // Served whole: complete.
    const whole = await verifyNatsLog(opts);
    expect(whole.messages).toBe(20);
    expect(whole.incomplete).toBeUndefined();
  });
});
