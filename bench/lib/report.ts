import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Scenario } from "../scenarios.ts";
import type { Measured } from "./measure.ts";

export interface Row {
  scenario: Scenario;
  sluice?: Measured;
  baseline?: Measured;
  /** Why there are no figures (e.g. the route does not exist yet). */
  pending?: string;
}

export interface HalfRate {
  targetRate: number;
  connections: number;
  measured: Measured;
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));
const mb = (n: number) => n.toFixed(0);
const pct = (n: number) => `${Math.round(n * 100)}%`;

/** sluice's events/s as a share of its baseline's. */
export function ratio(row: Row): number | undefined {
  if (!row.sluice || !row.baseline) return undefined;
  return row.sluice.eventsPerSec / row.baseline.eventsPerSec;
}

function flags(m: Measured, scenario: Scenario, prefix = ""): string {
  const notes: string[] = [];
  const expectedStatusErrors = scenario.expect === 429 ? m.requests : 0;
  if (Math.abs(m.statusErrors - expectedStatusErrors) > Math.max(5, m.requests * 0.01)) {
    notes.push(`${m.statusErrors} responses >= 400`);
  }
  if (m.socketErrors > 0) notes.push(`${m.socketErrors} socket errors`);
  // Only sluice deduplicates: the baseline going round the gzip pool costs it the same.
  if (m.poolWraps > 0 && !prefix) notes.push("gzip pool wrapped (some bodies repeated)");
  if (m.otherCpu > 0.1) notes.push(`other processes used ${pct(m.otherCpu)} CPU`);
  return notes.length ? ` ⚠ ${prefix}${notes.join(", ")}` : "";
}

/** The results table, in Markdown. */
export function table(rows: Row[], half?: HalfRate): string {
  const out = [
    "| scenario | sluice req/s | sluice events/s | p50 / p99 ms | RSS idle / peak MB | CPU server / wrk | baseline events/s | baseline p50 / p99 ms | baseline CPU server / wrk | baseline peak MB | ratio |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const row of rows) {
    const { scenario: sc, sluice: s, baseline: b } = row;
    if (!s) {
      out.push(`| ${sc.name} | ${row.pending ?? "not run"} | | | | | | | | | |`);
      continue;
    }
    const r = ratio(row);
    out.push(
      `| ${sc.name} | ${int(s.reqPerSec)} | ${int(s.eventsPerSec)} | ${ms(s.p50Ms)} / ${ms(s.p99Ms)} | ` +
        `${mb(s.idleRssMb)} / ${mb(s.peakRssMb)} | ${pct(s.serverCpu)} / ${pct(s.loaderCpu)} | ` +
        `${b ? int(b.eventsPerSec) : "–"} | ${b ? `${ms(b.p50Ms)} / ${ms(b.p99Ms)}` : "–"} | ` +
        `${b ? `${pct(b.serverCpu)} / ${pct(b.loaderCpu)}` : "–"} | ` +
        `${b ? mb(b.peakRssMb) : "–"} | ${r === undefined ? "–" : pct(r)}${flags(s, sc)}` +
        `${b ? flags(b, { ...sc, expect: 200 }, "baseline: ") : ""} |`,
    );
  }
  if (half) {
    const m = half.measured;
    out.push(
      `| track @ half max (${int(half.targetRate)} req/s target, ${half.connections} paced conns) | ` +
        `${int(m.reqPerSec)} | ${int(m.eventsPerSec)} | ${ms(m.p50Ms)} / ${ms(m.p99Ms)} | ` +
        `${mb(m.idleRssMb)} / ${mb(m.peakRssMb)} | ${pct(m.serverCpu)} / ${pct(m.loaderCpu)} | | | | | |`,
    );
  }
  return out.join("\n");
}

/** The issue's targets, each with its verdict. */
export function targets(rows: Row[], half?: HalfRate): string[] {
  const find = (name: string) => rows.find((r) => r.scenario.name === name);
  const lines: string[] = [];
  const check = (what: string, value: string, pass: boolean) =>
    lines.push(`- ${pass ? "PASS" : "FAIL"}: ${what}: ${value}`);
  for (const name of ["track", "v1-track"]) {
    const r = find(name);
    const v = r && ratio(r);
    if (v !== undefined) check(`${name} ≥ 65% of the bare baseline's req/s`, pct(v), v >= 0.65);
  }
  const b500 = find("batch-500");
  const v500 = b500 && ratio(b500);
  if (v500 !== undefined) {
    check("batch-500 ≥ 50% of the batch baseline's events/s", pct(v500), v500 >= 0.5);
  }
  if (half) {
    const p99 = half.measured.p99Ms;
    check(
      `p99 at half the max rate (${int(half.measured.reqPerSec)} req/s) < 5 ms`,
      `${ms(p99)} ms`,
      p99 < 5,
    );
  }
  // Memory counts sluice's child processes too; the function host (a process of its
  // own) exists only with functions configured, so the targets use the other scenarios.
  const measured = rows.flatMap((r) => (r.sluice && !r.scenario.functions ? [r.sluice] : []));
  if (measured.length > 0) {
    const idle = Math.max(...measured.map((m) => m.idleRssMb));
    const peak = Math.max(...measured.map((m) => m.peakRssMb));
    check("server RSS idle < 80 MB (highest over scenarios)", `${mb(idle)} MB`, idle < 80);
    check("server RSS at full load < 300 MB (highest peak)", `${mb(peak)} MB`, peak < 300);
  }
  const funcs = rows.find((r) => r.scenario.functions)?.sluice;
  if (funcs) {
    lines.push(
      `- (with functions configured, server + function host process: ` +
        `${mb(funcs.idleRssMb)} MB idle, ${mb(funcs.peakRssMb)} MB peak)`,
    );
  }
  return lines;
}

const START = "<!-- bench:results:start -->";
const END = "<!-- bench:results:end -->";

/** Replaces the generated block of RESULTS.md, keeping the hand-written analysis around it. */
export function writeResults(file: string, block: string): void {
  const text = existsSync(file)
    ? readFileSync(file, "utf8")
    : `# Benchmark results\n\n${START}\n${END}\n`;
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  const next =
    a >= 0 && b > a
      ? `${text.slice(0, a + START.length)}\n${block}\n${text.slice(b)}`
      : `${text.trimEnd()}\n\n${START}\n${block}\n${END}\n`;
  writeFileSync(file, next);
}
