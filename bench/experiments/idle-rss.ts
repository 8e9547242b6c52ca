/**
 * Idle RSS of `sluice serve` as run.ts takes it (500 ms after /health answers), over a
 * few fresh starts, with the threads it runs (issue 11, idle RSS ≤ 80 MB):
 *
 *   bun bench/experiments/idle-rss.ts [--rounds N] [--entry OTHER/src/main.ts] [--config JSON]
 *
 * With `--entry`, starts alternate between that tree (A) and this one (B).
 */
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { startSluice } from "../lib/servers.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rounds = Number(opt("rounds") ?? 3);
const other = opt("entry") ? resolve(opt("entry")!) : undefined;
/** Top-level config sections to add, as JSON (e.g. '{"admin":{"searchIndex":false}}'). */
const config = opt("config") ? JSON.parse(opt("config")!) : undefined;

const threads = (pid: number) => readdirSync(`/proc/${pid}/task`).length;
const status = (pid: number, field: string) =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) /
  1024;

for (let round = 0; round < rounds; round++) {
  for (const entry of other ? [other, undefined] : [undefined]) {
    const server = await startSluice({ entry, config });
    try {
      await Bun.sleep(2000);
      console.log(
        `${entry ? "A (entry)" : "B (this tree)"}: idle RSS ${server.idleRssMb.toFixed(1)} MB at 0.5 s, ` +
          `${status(server.pid, "VmRSS").toFixed(1)} MB at 2.5 s (anon ${status(server.pid, "RssAnon").toFixed(1)}, ` +
          `file ${status(server.pid, "RssFile").toFixed(1)}), ${threads(server.pid)} threads`,
      );
    } finally {
      await server.stop();
    }
  }
}
