import { expect, test } from "bun:test";
import { join } from "node:path";

// The benchmark itself is too slow and noisy for CI; this 2-second run of one scenario
// only keeps the suite working. It needs wrk (Debian/Ubuntu: `apt-get install -y wrk`).
const hasWrk = Bun.which("wrk") !== null;
if (!hasWrk) console.warn("bench smoke skipped: wrk is not installed (apt-get install -y wrk)");

test.skipIf(!hasWrk)(
  "bench --smoke loads sluice and its baseline and prints the ratio",
  async () => {
    const root = join(import.meta.dir, "..");
    const proc = Bun.spawn([process.execPath, join(root, "bench", "run.ts"), "--smoke", "--json"], {
      cwd: root,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
    const line = stdout.split("\n").find((l) => l.startsWith("BENCH_JSON "));
    const { rows } = JSON.parse(line!.slice("BENCH_JSON ".length)) as {
      rows: { scenario: { name: string }; sluice: Measured; baseline: Measured }[];
    };
    expect(rows.map((r) => r.scenario.name)).toEqual(["track"]);
    for (const m of [rows[0]!.sluice, rows[0]!.baseline]) {
      expect(m.requests).toBeGreaterThan(100);
      expect(m.statusErrors).toBe(0);
      expect(m.peakRssMb).toBeGreaterThan(0);
    }
    expect(stdout).toMatch(/\| track \| [\d,]+ \|/);
  },
  60_000,
);

interface Measured {
  requests: number;
  statusErrors: number;
  peakRssMb: number;
}
