/**
 * Where a `.cpuprofile` (from `bun --cpu-prof`, e.g. bench/experiments/profile.ts)
 * spends its samples, as a Markdown table: self samples per function, each charged to
 * the nearest sluice frame (`src/…`) on its stack, so that a native `stringify` shows
 * up as "stringify ← serialise (ingest/service.ts)". Shares are of the samples taken
 * while the server ran JavaScript or native code called from it (Bun's sampler takes
 * none while the event loop is idle), minus start-up (module loading).
 *
 *   bun bench/experiments/profile-summary.ts FILE.cpuprofile [--top N] [--by area]
 *
 * `--by area` sums the samples per sluice folder (http, ingest, dedup, …), Elysia and
 * the rest instead.
 */
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

const argv = process.argv.slice(2);
const file = argv[0];
if (!file) {
  console.error("usage: bun bench/experiments/profile-summary.ts FILE.cpuprofile [--top N]");
  process.exit(2);
}
const topIndex = argv.indexOf("--top");
const top = topIndex >= 0 ? Number(argv[topIndex + 1]) : 25;
const byArea = argv.includes("--by") && argv[argv.indexOf("--by") + 1] === "area";

const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: ProfileNode[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

/** `src/ingest/service.ts` for a sluice file, undefined otherwise. */
function sluicePath(url: string): string | undefined {
  const i = url.lastIndexOf("/src/");
  if (i < 0 || url.includes("node_modules")) return undefined;
  return url.slice(i + 5);
}

const label = (f: CallFrame) => f.functionName.replace(/^async /, "") || "(anonymous)";

function describe(n: ProfileNode): { key: string; area: string } | undefined {
  const own = sluicePath(n.callFrame.url);
  let area: string | undefined;
  let via: string | undefined;
  let loading = false;
  for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === "(module)" || f.functionName === "require") loading = true;
    const path = sluicePath(f.url);
    if (path !== undefined && via === undefined) {
      via = `${label(f)} (${path})`;
      area = path.split("/").slice(0, path.includes("/") ? 1 : 0)[0] ?? path;
      if (area === "") area = path;
    }
    if (area === undefined && f.url.includes("node_modules/elysia")) area = "elysia";
  }
  if (loading) return undefined;
  const name = label(n.callFrame);
  const key = own !== undefined ? `${name} (${own})` : via ? `${name} ← ${via}` : name;
  return { key, area: area ?? "other" };
}

const counts = new Map<string, number>();
let total = 0;
for (const n of profile.nodes) {
  const hits = n.hitCount ?? 0;
  if (hits === 0) continue;
  const d = describe(n);
  if (!d) continue;
  total += hits;
  const key = byArea ? d.area : d.key;
  counts.set(key, (counts.get(key) ?? 0) + hits);
}

const rows = [...counts].sort((a, b) => b[1] - a[1]).slice(0, top);
console.log(`${total} samples (start-up excluded)\n`);
console.log(`| ${byArea ? "area" : "function ← nearest sluice frame"} | samples | share |`);
console.log("| --- | ---: | ---: |");
for (const [key, n] of rows) {
  console.log(`| ${key.replaceAll("|", "\\|")} | ${n} | ${((100 * n) / total).toFixed(1)}% |`);
}
