/**
 * A paced HTTP/1.1 client for single events that keeps every answer's time (for
 * bench/experiments/tail-trace.ts): N keep-alive connections, each sending one request,
 * waiting for its answer, then pausing a uniform random 0–2×PAUSE ms, as run.ts's
 * "half max" row does with wrk. Prints one JSON line: every request's send time (ms
 * since the epoch) and latency (ms), the answers that were not 200, and the client's own
 * event-loop stalls (a 1 ms timer's lateness), so that a slow answer the client caused
 * can be told apart.
 *
 *   bun tail-client.ts URL PATH KEY CONNECTIONS PAUSE_MS SECONDS TAG
 */
import { readFileSync } from "node:fs";
import { EVENT_TEMPLATE } from "../lib/gzip-pool.ts";

const [url, path, key, conns, pause, secs, tag] = process.argv.slice(2) as string[];
const { hostname, port } = new URL(url!);
const connections = Number(conns);
const pauseMs = Number(pause);
const seconds = Number(secs);
const [pre, post] = readFileSync(EVENT_TEMPLATE, "utf8").trim().split("@ID@") as [string, string];
const wall = () => performance.timeOrigin + performance.now();

const sent: number[] = [];
const latency: number[] = [];
let bad = 0;
let counter = 0;
const until = performance.now() + seconds * 1000;
const stalls: [number, number][] = [];

function request(): Uint8Array {
  const body = `${pre}${tag}-${counter++}${post}`;
  return Buffer.from(
    `POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n` +
      `X-Write-Key: ${key}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

async function connection(): Promise<void> {
  let buffered = "";
  let waiting: (() => void) | undefined;
  let closed = false;
  const socket = await Bun.connect({
    hostname,
    port: Number(port),
    socket: {
      data(_s, chunk) {
        buffered += chunk.toString("latin1");
        const head = buffered.indexOf("\r\n\r\n");
        if (head < 0) return;
        const m = /content-length: *(\d+)/i.exec(buffered.slice(0, head));
        const length = m ? Number(m[1]) : 0;
        if (buffered.length < head + 4 + length) return;
        if (!buffered.startsWith("HTTP/1.1 200")) bad++;
        buffered = buffered.slice(head + 4 + length);
        waiting?.();
      },
      close() {
        closed = true;
        waiting?.();
      },
    },
  });
  while (performance.now() < until && !closed) {
    await Bun.sleep(Math.random() * 2 * pauseMs);
    const done = new Promise<void>((resolve) => {
      waiting = resolve;
    });
    const t0 = performance.now();
    socket.write(request());
    await done;
    const t1 = performance.now();
    sent.push(performance.timeOrigin + t0);
    latency.push(t1 - t0);
  }
  socket.end();
}

let expected = performance.now() + 1;
const lateness = setInterval(() => {
  const now = performance.now();
  if (now - expected > 1) stalls.push([wall(), now - expected + 1]);
  expected = now + 1;
}, 1);
await Promise.all(Array.from({ length: connections }, connection));
clearInterval(lateness);
console.log(JSON.stringify({ sent, latency, bad, stalls }));
