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
  await wait;
  expect(ended).toBe(true);
});

test("a full group does not wait, and a group that fills up while waiting is written", async () => {
  const linger = warmed(0.1);
  const first = performance.now();
  expect(linger.wait(first, 8)).toBeUndefined();
  const wait = linger.wait(first, 2);
  expect(wait).toBeInstanceOf(Promise);
  for (let n = 3; n <= 8; n++) linger.appended(first + 0.01 * n, n);
  await wait;
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
      // Idle, then one append: written without waiting for company.
      await Bun.sleep(50);
      const started = performance.now();
      await log.append(record(200));
      // Its answer took its write's time, not a wait (the timer's millisecond) on top.
      expect(performance.now() - started - lastWriteMs).toBeLessThan(0.9);
      expect(groups.at(-1)).toBe(1);
      await log.close();
    }
    // Without lingering nearly each append is its own write (a loaded machine can group
    // some); with it, about three to a write (0.5 ms / 0.2 ms).
    expect(writes.true).toBeLessThan(Math.min(120 * 0.75, writes.false!));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
