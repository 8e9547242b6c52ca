import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import { GroupLinger } from "../../src/log/file/linger.ts";

// A small group commit waits up to a millisecond for more appends if they come faster
// than that (src/log/file/linger.ts): fewer O_DSYNC writes at moderate rates; a lone
// append is written at once.

/** A linger that has seen appends `gapMs` apart. */
function warmed(gapMs: number): GroupLinger {
  const linger = new GroupLinger();
  const start = performance.now() - 100;
  for (let i = 0; i < 64; i++) linger.appended(start + i * gapMs, 1);
  return linger;
}

test("a small group waits while appends come fast, until one comes past the deadline", async () => {
  const linger = warmed(0.1);
  const first = performance.now();
  const wait = linger.wait(first, 1);
  expect(wait).toBeInstanceOf(Promise);
  let ended = false;
  void wait!.then(() => {
    ended = true;
  });
  linger.appended(first + 0.1, 2); // before the deadline: the group keeps waiting
  await Promise.resolve();
  expect(ended).toBe(false);
  linger.appended(first + 0.6, 3); // past it (first + 0.5 ms): written now, with this one
  await Promise.resolve(); // no timer can fire here: only this append ends the wait
  expect(ended).toBe(true);
});

test("a full group does not wait, and a group that fills up while waiting is written", async () => {
  let now = 1000; // the linger's clock, moved by hand: no time passes unless the test says
  const linger = new GroupLinger(() => now);
  for (let i = 0; i < 64; i++) linger.appended(now - 6.4 + i * 0.1, 1); // 0.1 ms apart
  expect(linger.wait(now, 8)).toBeUndefined();
  // Waits that fill up are hits: lingering stays on however many there are.
  for (let i = 0; i < 20; i++) {
    now += 0.1;
    const wait = linger.wait(now, 2);
    expect(wait).toBeInstanceOf(Promise);
    let ended = false;
    void wait!.then(() => {
      ended = true;
    });
    for (let n = 3; n <= 7; n++) linger.appended(now + 0.01 * n, n);
    await Promise.resolve();
    expect(ended).toBe(false);
    linger.appended(now + 0.08, 8); // the 8th, before the deadline: written now
    await Promise.resolve(); // no timer can fire here: only this append ends the wait
    expect(ended).toBe(true);
  }
});

test("a lone append, one after a pause, and appends slower than the deadline do not wait", () => {
  const lone = new GroupLinger();
  lone.appended(performance.now(), 1);
  expect(lone.wait(performance.now(), 1)).toBeUndefined();
  const paused = warmed(0.1);
  paused.appended(performance.now(), 1); // 100 ms after the last: counted as GAP_MAX_MS
  expect(paused.wait(performance.now(), 1)).toBeUndefined();
  expect(warmed(0.7).wait(performance.now(), 1)).toBeUndefined();
  const wait = warmed(0.1).wait(performance.now(), 1);
  expect(wait).toBeInstanceOf(Promise);
});

test("waits that no append ends (a client waiting for each answer) turn lingering off", async () => {
  const linger = warmed(0.1);
  let waits = 0;
  for (let i = 0; i < 20; i++) {
    const wait = linger.wait(performance.now(), 2);
    if (!wait) break;
    waits++;
    const started = performance.now();
    await wait; // no append: its timer ends it, about a millisecond after
    expect(performance.now() - started).toBeGreaterThanOrEqual(0.9);
  }
  expect(waits).toBeGreaterThan(0);
  expect(waits).toBeLessThan(20);
  expect(linger.wait(performance.now(), 2)).toBeUndefined();
});

test("lingering is off 10 ms after too many misses, doubling to 1 s while the try after each pause misses; a hit brings it back to 10 ms", async () => {
  let now = 1000; // the linger's clock, moved by hand: pauses of up to a second in no time
  const linger = new GroupLinger(() => now);
  for (let i = 0; i < 64; i++) linger.appended(now - 100 + i * 0.1, 1); // 0.1 ms apart
  const tryWait = () => linger.wait(now, 2);
  // Misses (each wait ended by its timer, no append) until lingering is off.
  let misses = 0;
  for (let wait = tryWait(); wait; wait = tryWait()) {
    misses++;
    await wait;
  }
  expect(misses).toBeGreaterThan(1);
  /** How long (ms, to the next whole one) waits stay off from now; the wait then begun. */
  const off = (): { ms: number; wait: Promise<void> } => {
    const from = now;
    for (;;) {
      const wait = tryWait();
      if (wait) return { ms: now - from, wait };
      now += 1;
      if (now - from > 10_000) throw new Error("lingering stays off");
    }
  };
  const pauses: number[] = [];
  for (let i = 0; i < 9; i++) {
    const { ms, wait } = off();
    pauses.push(ms);
    await wait; // the try after the pause misses too
  }
  expect(pauses).toEqual([10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
  // A try that hits (an append past its deadline) ends the backoff: the next miss
  // that turns lingering off turns it off for 10 ms again.
  const { wait } = off();
  linger.appended(now + 0.6, 3);
  await wait;
  for (let i = 0; i < 64; i++) linger.appended(now + 1 + i * 0.1, 1); // fast again
  now += 8;
  const next = tryWait();
  expect(next).toBeInstanceOf(Promise);
  await next;
  expect(off().ms).toBe(10);
});

/** Waits `ms` spinning through the event loop (the process stays busy, as a server's). */
async function spin(ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) await new Promise((r) => setImmediate(r));
}

const record = (i: number) => [new TextEncoder().encode(`{"i":${i}}`)];

test("appends 0.2 ms apart land in fewer writes; a lone one after a pause is written at once", async () => {
  // In memory where there is a tmpfs: writes take microseconds, not a shared disk's
  // 0.3–10 ms, so without lingering each of these appends is written alone.
  const dir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "sluice-linger-"));
  try {
    const writes: Record<string, number> = {};
    for (const linger of [true, false]) {
      const groups: number[] = [];
      let lastWriteMs = 0;
      const log = await FileEventLog.open({
        dir: join(dir, `log-${linger}`),
        segmentBytes: 1 << 24,
        logger: pino({ level: "silent" }),
        linger,
        onFlush: (seconds, records) => {
          groups.push(records);
          lastWriteMs = seconds * 1000;
        },
      });
      // Appends 0.2 ms apart for a while.
      const acks: Promise<unknown>[] = [];
      for (let i = 0; i < 120; i++) {
        acks.push(log.append(record(i)));
        await spin(0.2);
      }
      await Promise.all(acks);
      writes[String(linger)] = groups.length;
      // Idle, then one append: written without waiting for company. Its answer takes
      // its write's time, not a wait (the timer's millisecond) on top: the least of
      // three tries, so that one preemption of a loaded machine does not decide.
      let overhead = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 3; i++) {
        await Bun.sleep(50);
        const started = performance.now();
        await log.append(record(200 + i));
        overhead = Math.min(overhead, performance.now() - started - lastWriteMs);
        expect(groups.at(-1)).toBe(1);
      }
      expect(overhead).toBeLessThan(0.9);
      await log.close();
    }
    // Without lingering nearly each append is its own write (a loaded machine can group
    // some); with it, about three to a write (0.5 ms / 0.2 ms).
    expect(writes.true).toBeLessThan(Math.min(120 * 0.75, writes.false!));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
