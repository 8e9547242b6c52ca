/**
 * Issue 17: the cost of a published record's NATS headers, the client's `headers()` + `set`
 * + `encode()` against `publishHeaders` (src/log/nats/nats-log.ts), interleaved.
 *
 *   bun bench/experiments/nats-headers.ts
 */
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import { publishHeaders } from "../../src/log/nats/nats-log.ts";

const N = 300_000;
const bytes = (h: MsgHdrs) => (h as unknown as { encode(): Uint8Array }).encode();
const ids = Array.from({ length: 1000 }, (_, i) => `web:${crypto.randomUUID()}-${i}`);
const a = () => {
  let n = 0;
  for (let i = 0; i < N; i++) {
    const h = headers();
    h.set("Sluice-Type", "track");
    h.set("Nats-Msg-Id", ids[i % 1000]!);
    n += bytes(h).length;
  }
  return n;
};
const b = () => {
  let n = 0;
  for (let i = 0; i < N; i++) n += bytes(publishHeaders("track", ids[i % 1000]!)).length;
  return n;
};
for (let r = 0; r < 4; r++)
  for (const [name, f] of [
    ["client headers()", a],
    ["publishHeaders", b],
  ] as const) {
    const t = performance.now();
    f();
    console.log(r, name, (((performance.now() - t) * 1000) / N).toFixed(3), "µs/event");
  }
