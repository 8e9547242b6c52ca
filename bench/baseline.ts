/**
 * The baselines sluice is compared with, run as their own process like sluice is:
 *
 *   bun bench/baseline.ts single PORT        reads the body, JSON-parses it, answers 200
 *   bun bench/baseline.ts batch PORT FILE    also gunzips when asked, re-serialises each
 *                                            event and appends them to FILE (no fsync)
 *
 * They do the least any collector must do, so the ratio says what sluice's durability,
 * auth, validation, enrichment, dedup and rate limiting cost on top of it.
 */
import { closeSync, openSync, writeSync } from "node:fs";

const [mode, portArg, file] = process.argv.slice(2);
const OK = '{"ok":true,"success":true}';
const headers = { "content-type": "application/json" };

/** The fastest way Bun offers to get a JSON body (req.json(); gunzip first when asked). */
async function readJson(req: Request): Promise<unknown> {
  if (req.headers.get("content-encoding") !== "gzip") return req.json();
  const raw = new Uint8Array(await req.arrayBuffer());
  return JSON.parse(new TextDecoder().decode(Bun.gunzipSync(raw)));
}

let fetchHandler: (req: Request) => Promise<Response>;
let fd: number | undefined;
if (mode === "single") {
  fetchHandler = async (req) => {
    await readJson(req);
    return new Response(OK, { headers });
  };
} else if (mode === "batch" && file) {
  const out = openSync(file, "a");
  fd = out;
  fetchHandler = async (req) => {
    const body = (await readJson(req)) as { batch?: unknown[] } | null;
    const events = Array.isArray(body?.batch) ? body.batch : [body];
    let lines = "";
    for (const e of events) lines += `${JSON.stringify(e)}\n`;
    writeSync(out, lines);
    return new Response(`{"ok":true,"success":true,"received":${events.length}}`, { headers });
  };
} else {
  console.error("usage: bun bench/baseline.ts single PORT | batch PORT FILE");
  process.exit(2);
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(portArg ?? 0),
  maxRequestBodySize: 8 * 1024 * 1024,
  fetch: fetchHandler,
  // A malformed body is the load's fault, not the baseline's: answer 400 quietly.
  error: () => new Response('{"error":"bad request"}', { status: 400, headers }),
});
console.log(JSON.stringify({ msg: "baseline started", mode, port: server.port }));

const stop = () => {
  server.stop(true);
  if (fd !== undefined) closeSync(fd);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
