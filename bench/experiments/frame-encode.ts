/**
 * The append path's framing, in process (issue 14): a 500-event batch's records from
 * their JSON text to the bytes one write takes, before and after, interleaved.
 *
 *   bun bench/experiments/frame-encode.ts [--events 500] [--rounds 20] [--ms 500]
 *
 * before: ingest encoded the JSON into one buffer (`Buffer.write`), the log then copied
 *   each record into its frame buffer (`encodeRecords`, v2 frames).
 * after: the `AppendRecord` objects ingest builds, `encodeFrames` writing each JSON
 *   text straight into the frame buffer (v3 frames with sourceId, type and receivedAt),
 *   and the cursor strings the stream hands back.
 *
 * In process, with every buffer hot in the cache, the copy the change removes costs
 * little; in the server it does not (see bench/RESULTS.md "Event log seam").
 */
import { encodeFrames, encodeRecords } from "../../src/log/file/record.ts";

const argv = process.argv.slice(2);
const opt = (name: string, d: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const EVENTS = opt("events", 500);
const ROUNDS = opt("rounds", 20);
const MS = opt("ms", 500);

const now = Date.now();
const jsons = Array.from({ length: EVENTS }, (_, i) =>
  JSON.stringify({
    type: "track",
    event: "Order Completed",
    userId: `user-${i % 97}`,
    properties: { orderId: `o-${i}`, revenue: 12.5 + i, currency: "EUR", items: [1, 2, 3] },
    context: { ip: "203.0.113.9", library: { name: "analytics.js", version: "2.11.1" } },
    messageId: crypto.randomUUID(),
    timestamp: new Date(now).toISOString(),
    receivedAt: new Date(now).toISOString(),
    sourceId: "web",
    keyId: "k-1",
  }),
);

function before(): number {
  let units = 0;
  for (const j of jsons) units += j.length;
  const buffer = Buffer.allocUnsafe(units * 3);
  const records: Uint8Array[] = new Array(jsons.length);
  let at = 0;
  for (let k = 0; k < jsons.length; k++) {
    const written = buffer.write(jsons[k]!, at);
    records[k] = buffer.subarray(at, at + written);
    at += written;
  }
  return encodeRecords(records).byteLength;
}

function after(): number {
  const records = jsons.map((payload) => ({
    sourceId: "web",
    type: "track",
    payload,
    messageId: "x",
    receivedAt: now,
  }));
  const framed = encodeFrames(records);
  const cursors: string[] = new Array(framed.sizes.length);
  const prefix = "1:";
  let offset = 1_000_000 + framed.bytes.byteLength;
  for (let i = framed.sizes.length - 1; i >= 0; i--) {
    cursors[i] = prefix + offset;
    offset -= framed.sizes[i]!;
  }
  return framed.bytes.byteLength + cursors.length;
}

/** Batches per second over `ms`. */
function rate(fn: () => number): number {
  let n = 0;
  let sink = 0;
  const start = performance.now();
  while (performance.now() - start < MS) {
    sink += fn();
    n++;
  }
  if (sink < 0) console.log(sink);
  return (n * 1000) / (performance.now() - start);
}

for (let i = 0; i < 3; i++) {
  rate(before); // warm up
  rate(after);
}
const a: number[] = [];
const b: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  a.push(1e6 / rate(before));
  b.push(1e6 / rate(after));
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const [ma, mb] = [median(a), median(b)];
console.log(
  `${EVENTS} events of ~${jsons[0]!.length} B: before ${ma.toFixed(1)} µs/batch, after ${mb.toFixed(1)} µs/batch ` +
    `(${((mb / ma) * 100).toFixed(0)}%), median of ${ROUNDS} interleaved rounds`,
);
