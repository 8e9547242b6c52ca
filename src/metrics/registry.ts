/**
 * A small Prometheus registry: counters, gauges and histograms with up to three
 * labels, rendered in the text exposition format (version 0.0.4).
 *
 * Children are kept in nested maps keyed by the label values themselves, so an
 * increment on a known series is a few map lookups and no allocation: the hot path
 * (one request, one batch) may call it freely.
 *
 * Why not prom-client (issue 14 asked): prom-client 15.1.3 runs on Bun (the metrics
 * tests pass against an adapter over it, apart from its blank lines between families),
 * but it is about ten times slower where it counts: one request's metrics cost
 * 3.2-3.5 µs with prom-client (a label object per call, hashed to a sorted string
 * key) against 0.36-0.39 µs here (`bun bench/experiments/metrics-registry.ts`, see
 * bench/RESULTS.md). Its `metrics()` is also async, so /metrics and every render()
 * caller would change. A ~200-line file is kept for a 10x cheaper hot path.
 */

type LabelValue = string | number;

/** Series storage: nested maps, one level per label, a child at the leaf. */
class Series<C> {
  private readonly root = new Map<LabelValue, unknown>();

  constructor(
    private readonly depth: number,
    private readonly make: () => C,
  ) {}

  get(a?: LabelValue, b?: LabelValue, c?: LabelValue): C {
    if (this.depth === 0) return this.leaf(this.root, "");
    let level = this.root;
    if (this.depth >= 2) level = this.branch(level, a!);
    if (this.depth >= 3) level = this.branch(level, b!);
    return this.leaf(level, this.depth === 1 ? a! : this.depth === 2 ? b! : c!);
  }

  /** Every child with its label values, in insertion order. */
  entries(): [LabelValue[], C][] {
    const out: [LabelValue[], C][] = [];
    const walk = (level: Map<LabelValue, unknown>, values: LabelValue[], left: number) => {
      for (const [k, v] of level) {
        if (left <= 1) out.push([this.depth === 0 ? [] : [...values, k], v as C]);
        else walk(v as Map<LabelValue, unknown>, [...values, k], left - 1);
      }
    };
    walk(this.root, [], this.depth);
    return out;
  }

  private branch(level: Map<LabelValue, unknown>, key: LabelValue): Map<LabelValue, unknown> {
    let next = level.get(key) as Map<LabelValue, unknown> | undefined;
    if (!next) {
      next = new Map();
      level.set(key, next);
    }
    return next;
  }

  private leaf(level: Map<LabelValue, unknown>, key: LabelValue): C {
    let child = level.get(key) as C | undefined;
    if (child === undefined) {
      child = this.make();
      level.set(key, child);
    }
    return child;
  }
}

interface Metric {
  render(out: string[]): void;
}

abstract class Family<C> implements Metric {
  protected readonly series: Series<C>;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labels: readonly string[],
    make: () => C,
  ) {
    if (labels.length > 3) throw new Error(`${name}: at most three labels`);
    this.series = new Series(labels.length, make);
  }

  abstract render(out: string[]): void;

  protected header(out: string[], type: string): void {
    header(out, this.name, this.help, type);
  }

  protected labelText(values: LabelValue[], extra?: string): string {
    const parts = values.map((v, i) => `${this.labels[i]}="${escapeLabel(String(v))}"`);
    if (extra) parts.push(extra);
    return parts.length === 0 ? "" : `{${parts.join(",")}}`;
  }
}

/** A monotonically increasing count. */
export class Counter extends Family<{ value: number }> {
  constructor(name: string, help: string, labels: readonly string[] = []) {
    super(name, help, labels, () => ({ value: 0 }));
  }

  inc(by = 1, a?: LabelValue, b?: LabelValue, c?: LabelValue): void {
    this.series.get(a, b, c).value += by;
  }

  /** The current value of one series (0 when never incremented). */
  value(a?: LabelValue, b?: LabelValue, c?: LabelValue): number {
    return this.series.get(a, b, c).value;
  }

  render(out: string[]): void {
    this.header(out, "counter");
    for (const [values, child] of this.series.entries()) {
      out.push(`${this.name}${this.labelText(values)} ${formatNumber(child.value)}`);
    }
  }
}

/** A value read when scraped, from a function that returns one value per label set. */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly collect: () => number | [Record<string, string>, number][],
  ) {}

  render(out: string[]): void {
    header(out, this.name, this.help, "gauge");
    const v = this.collect();
    if (typeof v === "number") {
      out.push(`${this.name} ${formatNumber(v)}`);
      return;
    }
    for (const [labels, value] of v) {
      const text = Object.entries(labels)
        .map(([k, lv]) => `${k}="${escapeLabel(lv)}"`)
        .join(",");
      out.push(`${this.name}{${text}} ${formatNumber(value)}`);
    }
  }
}

interface HistogramChild {
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** Observations counted into fixed buckets (upper bounds, ascending). */
export class Histogram extends Family<HistogramChild> {
  constructor(
    name: string,
    help: string,
    readonly buckets: readonly number[],
    labels: readonly string[] = [],
  ) {
    super(name, help, labels, () => ({
      counts: new Float64Array(buckets.length + 1),
      sum: 0,
      count: 0,
    }));
  }

  observe(value: number, a?: LabelValue, b?: LabelValue, c?: LabelValue): void {
    const child = this.series.get(a, b, c);
    const bounds = this.buckets;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    child.counts[i]! += 1;
    child.sum += value;
    child.count += 1;
  }

  /** Observation count of one series. */
  count(a?: LabelValue, b?: LabelValue, c?: LabelValue): number {
    return this.series.get(a, b, c).count;
  }

  render(out: string[]): void {
    this.header(out, "histogram");
    for (const [values, child] of this.series.entries()) {
      let cumulative = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += child.counts[i]!;
        const le = i < this.buckets.length ? formatNumber(this.buckets[i]!) : "+Inf";
        out.push(`${this.name}_bucket${this.labelText(values, `le="${le}"`)} ${cumulative}`);
      }
      out.push(`${this.name}_sum${this.labelText(values)} ${formatNumber(child.sum)}`);
      out.push(`${this.name}_count${this.labelText(values)} ${child.count}`);
    }
  }
}

/** Holds metrics in registration order and renders them all. */
export class Registry {
  private readonly metrics: Metric[] = [];

  register<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }

  /** The whole exposition text, ending with a newline. */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics) m.render(out);
    return `${out.join("\n")}\n`;
  }
}

/** The Content-Type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function header(out: string[], name: string, help: string, type: string): void {
  out.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
  out.push(`# TYPE ${name} ${type}`);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}
