/**
 * What the headers of an answer cost in a real `Bun.serve`, end to end (building the
 * Response and writing it out), with nothing else in the handler (issue 11): a bare
 * server answers `{"ok":true,"success":true}` in one of several ways, wrk drives it,
 * and the server's CPU time per request is read from /proc/<pid>/stat. Modes run in
 * interleaved rounds, each in a fresh process.
 *
 *   bun bench/experiments/answer-headers.ts [--rounds 4] [--duration 5] [--modes a,b]
 *
 * Modes: `ct` (content-type only, as bench/baseline.ts), `five` (content-type, request
 * id, X-RateLimit-Limit/Remaining/Reset from a plain object, as sluice answers),
 * `nine` (five + the four CORS headers of a browser page), `blob4` (the body a Blob
 * whose type gives the content-type, plus the other four), `clone` (a prebuilt Response
 * cloned, its three changing headers set), `blobset4` (a Response of the Blob, then the
 * four headers set on it one by one), `cloneset4` (a prebuilt Response of the Blob with
 * no headers of its own cloned, then the four set). A mode with `+ip` (`blob4+ip`) also
 * reads `server.requestIP(request)` first.
 */
import { spawn } from "bun";

const JSON_TYPE = "application/json;charset=utf-8";
const OK = '{"ok":true,"success":true}';

if (process.argv[2] === "serve") {
  const mode = process.argv[3]!;
  let seq = 0;
  const blob = new Blob([OK], { type: JSON_TYPE });
  const template = new Response(blob, {
    headers: {
      "x-request-id": "x",
      "x-ratelimit-limit": "1000000",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": "0",
    },
  });
  const bare = new Response(blob);
  const rate = (h: Record<string, string>) => {
    h["x-request-id"] = `a1b2c3d4-${(++seq).toString(36)}`;
    h["x-ratelimit-limit"] = "1000000";
    h["x-ratelimit-remaining"] = String(999_999 - (seq % 1000));
    h["x-ratelimit-reset"] = "1";
    return h;
  };
  // Typed loosely: `clone()` is typed as undici's Response, not Bun's.
  const answers: Record<string, () => unknown> = {
    ct: () => new Response(OK, { headers: { "content-type": JSON_TYPE } }),
    five: () => new Response(OK, { status: 200, headers: rate({ "content-type": JSON_TYPE }) }),
    nine: () =>
      new Response(OK, {
        status: 200,
        headers: rate({
          "content-type": JSON_TYPE,
          "access-control-allow-origin": "https://shop.example.com",
          "access-control-allow-credentials": "true",
          "access-control-expose-headers":
            "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After",
          vary: "Origin",
        }),
      }),
    blob4: () => new Response(blob, { status: 200, headers: rate({}) }),
    clone: () => {
      const res = template.clone();
      const h = res.headers;
      h.set("x-request-id", `a1b2c3d4-${(++seq).toString(36)}`);
      h.set("x-ratelimit-remaining", String(999_999 - (seq % 1000)));
      h.set("x-ratelimit-reset", "1");
      return res;
    },
    blobset4: () => {
      const res = new Response(blob);
      const h = res.headers;
      const values = rate({});
      for (const name in values) h.set(name, values[name]!);
      return res;
    },
    cloneset4: () => {
      const res = bare.clone();
      const h = res.headers;
      const values = rate({});
      for (const name in values) h.set(name, values[name]!);
      return res;
    },
  };
  // `+ip`: the same answer after `server.requestIP` (what sluice reads for requestIp).
  const [name, ip] = mode.split("+");
  const answer = answers[name!] as (() => Response) | undefined;
  if (!answer) throw new Error(`unknown mode ${mode}`);
  let address = "";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: ip
      ? (req, srv) => {
          address = srv.requestIP(req)?.address ?? address;
          return answer();
        }
      : answer,
  });
  // Exits on SIGTERM, so that a `bun --cpu-prof` run of this mode writes its profile.
  process.on("SIGTERM", () => process.exit(0));
  console.log(server.port);
} else {
  const argv = process.argv.slice(2);
  const opt = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const rounds = Number(opt("rounds") ?? 4);
  const seconds = Number(opt("duration") ?? 5);
  const modes = (opt("modes") ?? "ct,five,nine,blob4,clone,blobset4,cloneset4").split(",");
  const ticks = (pid: number) => {
    const stat = require("node:fs").readFileSync(`/proc/${pid}/stat`, "utf8") as string;
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (1/100 s)
  };
  const results = new Map<string, number[]>();
  for (let r = 0; r < rounds; r++)
    for (const mode of modes) {
      const child = spawn([process.execPath, import.meta.path, "serve", mode], {
        stdout: "pipe",
      });
      const reader = child.stdout.getReader();
      const port = new TextDecoder().decode((await reader.read()).value).trim();
      const url = `http://127.0.0.1:${port}/`;
      // warm-up, then the measured run
      await spawn(["wrk", "-t1", "-c16", "-d2s", url], { stdout: "ignore" }).exited;
      const before = ticks(child.pid);
      const wrk = spawn(["wrk", "-t1", "-c16", `-d${seconds}s`, url], { stdout: "pipe" });
      const out = await new Response(wrk.stdout).text();
      const cpu = (ticks(child.pid) - before) / 100;
      const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
      child.kill();
      await child.exited;
      const us = (cpu * 1e6) / requests;
      (results.get(mode) ?? results.set(mode, []).get(mode)!).push(us);
      console.log(
        `round ${r} ${mode}: ${Math.round(requests / seconds)} req/s, ${us.toFixed(2)} µs CPU/request`,
      );
    }
  for (const [mode, xs] of results) {
    const sorted = [...xs].sort((a, b) => a - b);
    console.log(
      `${mode}: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)} µs CPU/request (${xs.map((x) => x.toFixed(2)).join(" ")})`,
    );
  }
}
