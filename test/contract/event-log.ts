import { afterEach, describe, expect, test } from "bun:test";
import type { AppendRecord, LogReader, LogStream, StreamRecord } from "../../src/log/stream.ts";

/**
 * The event log contract (`src/log/stream.ts`), run against every backend: each
 * backend's test file calls `eventLogContract` with a way to open its log. Nothing here
 * knows segments or stream sequences; cursors are only handed back.
 */
export interface EventLogBackend {
  /**
   * Opens a log on fresh, empty storage, at its finest retention granularity (the file
   * backend: one segment per append call), so `trimBefore` deletes exactly what it may.
   */
  open(): Promise<OpenedLog>;
}

export interface OpenedLog {
  log: LogStream;
  /** Closes the log and opens it again on the same storage, as a restart would. */
  reopen(): Promise<LogStream>;
  /** Closes whatever is still open and removes the storage. */
  cleanup(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

/** A stored-event-like record: `n` numbers it across the test. */
function rec(n: number, sourceId = "web", type = "track"): AppendRecord {
  const messageId = `m-${n}`;
  const event = { messageId, sourceId, type, receivedAt: new Date(T0 + n).toISOString(), n };
  return {
    sourceId,
    type,
    messageId,
    receivedAt: T0 + n,
    payload: encoder.encode(JSON.stringify(event)),
  };
}
const recs = (from: number, count: number, sourceId?: string) =>
  Array.from({ length: count }, (_, i) => rec(from + i, sourceId));
const numbers = (records: StreamRecord[]) =>
  records.map((r) => (JSON.parse(decoder.decode(r.payload)) as { n: number }).n);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Reads until `count` records came or a read waited a while for nothing. */
async function readAll(consumer: LogReader, count: number): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  while (out.length < count) {
    const batch = await consumer.read(Math.min(50, count - out.length), 2000);
    if (batch.length === 0) break;
    out.push(...batch);
  }
  return out;
}

export function eventLogContract(name: string, backend: EventLogBackend): void {
  describe(`event log contract: ${name}`, () => {
    let opened: OpenedLog | undefined;
    afterEach(async () => {
      await opened?.cleanup();
      opened = undefined;
    });
    const open = async () => {
      opened = await backend.open();
      return opened;
    };

    test("records come back in order, with sourceId, type, payload and their append cursors", async () => {
      const { log } = await open();
      expect(log.healthy()).toBe(true);
      const first = await log.append(recs(0, 3));
      const second = await log.append([rec(3, "app", "identify")]);
      expect(first).toHaveLength(3);
      expect(new Set([...first, ...second]).size).toBe(4);
      const read = await readAll(await log.consumer("all", { start: "oldest" }), 4);
      expect(numbers(read)).toEqual([0, 1, 2, 3]);
      expect(read.map((r) => r.cursor)).toEqual([...first, ...second]);
      expect(read.map((r) => [r.sourceId, r.type])).toEqual([
        ["web", "track"],
        ["web", "track"],
        ["web", "track"],
        ["app", "identify"],
      ]);
      expect(decoder.decode(read[3]!.payload)).toBe(
        decoder.decode(rec(3, "app", "identify").payload as Uint8Array),
      );
      // When a backend knows it: the event's own receivedAt, or when the log stored it.
      for (const r of read)
        if (r.receivedAt !== undefined) expect(r.receivedAt).toBeGreaterThanOrEqual(T0);
      expect(await log.append([])).toEqual([]);
    });

    test("appended records survive a reopen, and appends go on after them", async () => {
      const o = await open();
      await o.log.append(recs(0, 5));
      const log = await o.reopen();
      await log.append(recs(5, 2));
      expect(numbers(await readAll(await log.consumer("c", { start: "oldest" }), 7))).toEqual(
        range(0, 7),
      );
    });

    test("a consumer resumes right after its last commit, also after a reopen", async () => {
      const o = await open();
      await o.log.append(recs(0, 10));
      const a = await o.log.consumer("a", { start: "oldest" });
      const read = await a.read(6);
      expect(numbers(read)).toEqual(range(0, 6));
      await a.commit(read[3]!.cursor);
      await a.close();
      // Read but not committed (4, 5) comes again.
      const again = await o.log.consumer("a", { start: "now" });
      const rest = await readAll(again, 6);
      expect(numbers(rest)).toEqual(range(4, 10));
      await again.commit(rest[2]!.cursor);
      await again.close();
      const log = await o.reopen();
      const afterRestart = await log.consumer("a", { start: "oldest" });
      expect(numbers(await readAll(afterRestart, 3))).toEqual([7, 8, 9]);
      expect(await afterRestart.read(10)).toEqual([]);
    });

    test('"now" skips what is there; the consumer exists from then on', async () => {
      const o = await open();
      await o.log.append(recs(0, 5));
      const now = await o.log.consumer("now", { start: "now" });
      expect(await now.read(10)).toEqual([]);
      expect(await now.lag()).toBe(0);
      await o.log.append(recs(5, 2));
      await now.close();
      const log = await o.reopen();
      await log.append(recs(7, 1));
      const reopened = await log.consumer("now", { start: "now" });
      expect(numbers(await readAll(reopened, 3))).toEqual([5, 6, 7]);
    });

    test("a consumer can start after a given cursor", async () => {
      const { log } = await open();
      const cursors = await log.append(recs(0, 6));
      const c = await log.consumer("after", { start: { after: cursors[2]! } });
      expect(numbers(await readAll(c, 3))).toEqual([3, 4, 5]);
    });

    test("two consumers are independent", async () => {
      const { log } = await open();
      await log.append(recs(0, 8));
      const a = await log.consumer("a", { start: "oldest" });
      const b = await log.consumer("b", { start: "oldest" });
      const readA = await readAll(a, 8);
      await a.commit(readA.at(-1)!.cursor);
      expect(await a.lag()).toBe(0);
      expect(await b.lag()).toBe(8);
      const readB = await b.read(3);
      expect(numbers(readB)).toEqual([0, 1, 2]);
      await b.commit(readB[1]!.cursor);
      expect(await b.lag()).toBe(6);
      expect(await a.read(5)).toEqual([]);
    });

    test("lag counts records not committed, read or not", async () => {
      const { log } = await open();
      await log.append(recs(0, 5));
      const c = await log.consumer("lag", { start: "oldest" });
      expect(await c.lag()).toBe(5);
      const read = await c.read(3);
      expect(await c.lag()).toBe(5);
      await c.commit(read[1]!.cursor);
      expect(await c.lag()).toBe(3);
      await log.append(recs(5, 2));
      expect(await c.lag()).toBe(5);
    });

    test("concurrent appends: each call's records keep their order, none lost or doubled", async () => {
      const { log } = await open();
      const calls = Array.from({ length: 8 }, (_, k) => recs(k * 100, 25));
      const cursors = await Promise.all(calls.map((records) => log.append(records)));
      expect(new Set(cursors.flat()).size).toBe(200);
      const read = await readAll(await log.consumer("all", { start: "oldest" }), 200);
      const got = numbers(read);
      const all = calls.flatMap((_, k) => range(k * 100, k * 100 + 25));
      expect([...got].sort((x, y) => x - y)).toEqual(all);
      const byNumber = new Map(read.map((r, i) => [got[i]!, r.cursor]));
      for (let k = 0; k < 8; k++) {
        expect(got.filter((n) => Math.floor(n / 100) === k)).toEqual(range(k * 100, k * 100 + 25));
        // The cursors append gave are the ones the records are read with.
        expect(range(k * 100, k * 100 + 25).map((n) => byNumber.get(n))).toEqual(cursors[k]!);
      }
    });

    test("appendLast resolves with the cursor of its last record, the one append would give it", async () => {
      const { log } = await open();
      const viaAppend = await log.append(recs(0, 3));
      const last = await log.appendLast(recs(3, 4));
      const read = await readAll(await log.consumer("last", { start: "oldest" }), 7);
      expect(numbers(read)).toEqual(range(0, 7));
      expect(read.map((r) => r.cursor)).toEqual([
        ...viaAppend,
        ...read.slice(3).map((r) => r.cursor),
      ]);
      expect(last).toBe(read[6]!.cursor);
      const one = await log.appendLast([rec(7)]);
      const next = await readAll(await log.consumer("next", { start: "oldest" }), 8);
      expect(one).toBe(next[7]!.cursor);
      await expect(log.appendLast([])).rejects.toThrow();
    });

    test("a waiting read returns as soon as a record is appended", async () => {
      const { log } = await open();
      const c = await log.consumer("wait", { start: "oldest" });
      const started = Date.now();
      const pending = c.read(10, 20_000);
      await Bun.sleep(0);
      await log.append([rec(1)]);
      expect(numbers(await pending)).toEqual([1]);
      expect(Date.now() - started).toBeLessThan(15_000);
    });

    test("a consumer of one source sees only that source's records", async () => {
      const o = await open();
      await o.log.append([...recs(0, 3, "web"), ...recs(3, 2, "app"), ...recs(5, 2, "web")]);
      const web = await o.log.consumer("web-only", { start: "oldest", sourceId: "web" });
      const read = await readAll(web, 5);
      expect(numbers(read)).toEqual([0, 1, 2, 5, 6]);
      expect(await web.lag()).toBe(5);
      await web.commit(read[2]!.cursor);
      expect(await web.lag()).toBe(2);
      await web.close();
      const log = await o.reopen();
      await log.append([rec(7, "app"), rec(8, "web")]);
      const again = await log.consumer("web-only", { start: "oldest", sourceId: "web" });
      expect(numbers(await readAll(again, 3))).toEqual([5, 6, 8]);
    });

    test("a payload given as JSON text is stored as its UTF-8 bytes", async () => {
      const { log } = await open();
      const text = JSON.stringify({ messageId: "m-t", n: 1, note: "naïve ☃ 😀" });
      const [cursor] = await log.append([
        { sourceId: "web", type: "page", payload: text, receivedAt: T0 },
      ]);
      const [got] = await readAll(await log.consumer("text", { start: "oldest" }), 1);
      expect(got!.cursor).toBe(cursor!);
      expect(decoder.decode(got!.payload)).toBe(text);
      expect([got!.sourceId, got!.type]).toEqual(["web", "page"]);
      expect(got!.receivedAt).toBeGreaterThanOrEqual(T0);
    });

    test("a reader reads from oldest, now or after a cursor, filtered by source, and commits nothing", async () => {
      const { log } = await open();
      const cursors = await log.append([...recs(0, 3, "web"), ...recs(3, 2, "app"), rec(5, "web")]);
      const all = await log.reader({ start: "oldest" });
      expect(numbers(await readAll(all, 6))).toEqual(range(0, 6));
      await all.close();
      const web = await log.reader({ start: { after: cursors[1]! }, sourceId: "web" });
      expect(numbers(await readAll(web, 2))).toEqual([2, 5]);
      const now = await log.reader({ start: "now" });
      expect(await now.read(10)).toEqual([]);
      const waiting = now.read(10, 20_000);
      await log.append([rec(6, "app")]);
      expect(numbers(await waiting)).toEqual([6]);
      expect(numbers(await readAll(web, 1))).toEqual([]);
      await log.append([rec(7, "web")]);
      expect(numbers(await readAll(web, 1))).toEqual([7]);
      await web.close();
      await now.close();
      // Readers leave no consumer behind.
      expect(await log.backlog("reader", "web")).toBeUndefined();
      const c = await log.consumer("after-readers", { start: "oldest" });
      expect(await c.lag()).toBe(8);
    });

    test("backlog: records not committed and the oldest one's time, open or closed, per source", async () => {
      const { log } = await open();
      expect(await log.backlog("nobody")).toBeUndefined();
      await log.append([...recs(0, 3, "web"), ...recs(3, 2, "app")]);
      const c = await log.consumer("bl", { start: "oldest", sourceId: "web" });
      const first = await c.backlog();
      expect(first.records).toBe(3);
      expect(first.oldestAt).toBeGreaterThanOrEqual(T0);
      const read = await readAll(c, 3);
      await c.commit(read[0]!.cursor);
      const after = await c.backlog();
      expect(after.records).toBe(2);
      expect(after.oldestAt).toBeGreaterThanOrEqual(first.oldestAt!);
      await c.commit(read[2]!.cursor);
      expect(await c.backlog()).toEqual({ records: 0 });
      await c.close();
      await log.append([rec(5, "web"), rec(6, "app"), rec(7, "web")]);
      expect((await log.backlog("bl", "web"))?.records).toBe(2);
      const again = await log.consumer("bl", { start: "oldest", sourceId: "web" });
      expect(await again.lag()).toBe(2);
      const rest = await readAll(again, 2);
      expect(numbers(rest)).toEqual([5, 7]);
      await again.commit(rest[1]!.cursor);
      expect(await again.lag()).toBe(0);
      expect((await log.backlog("bl", "web"))?.records).toBe(0);
    });

    test("trimBefore deletes the records before a cursor; consumers behind it resume at the oldest kept", async () => {
      const o = await open();
      const cursors: string[] = [];
      for (let n = 0; n < 10; n++) cursors.push(...(await o.log.append([rec(n)])));
      const slow = await o.log.consumer("slow", { start: "oldest" });
      const read = await slow.read(2);
      await slow.commit(read[1]!.cursor);
      await slow.close();
      await o.log.trimBefore(cursors[5]!);
      const fresh = await o.log.consumer("fresh", { start: "oldest" });
      expect(numbers(await readAll(fresh, 5))).toEqual(range(5, 10));
      expect(await fresh.read(10)).toEqual([]);
      await fresh.close();
      const log = await o.reopen();
      const resumed = await log.consumer("slow", { start: "oldest" });
      expect(numbers(await readAll(resumed, 5))).toEqual(range(5, 10));
      expect(await resumed.read(10)).toEqual([]);
      await log.append([rec(10)]);
      expect(numbers(await readAll(resumed, 1))).toEqual([10]);
    });

    /** What a reader reads from the oldest record on (a reader holds nothing back). */
    async function kept(log: LogStream): Promise<number[]> {
      const c = await log.reader({ start: "oldest" });
      const out = numbers(await readAll(c, 100));
      await c.close();
      return out;
    }
    const keepAll = { maxAgeMs: 3_600_000, maxBytes: 1024 ** 3 };
    const keepNone = { maxAgeMs: 3_600_000, maxBytes: 0 };

    test("retain: within the limits nothing goes and nobody holds anything back, even a consumer far behind", async () => {
      const { log } = await open();
      for (let n = 0; n < 6; n++) await log.append([rec(n)]);
      await (await log.consumer("behind", { start: "oldest" })).close();
      const result = await log.retain({ ...keepAll, consumers: ["behind"] });
      expect(result.holding).toEqual([]);
      expect(await kept(log)).toEqual(range(0, 6));
    });

    test("retain by size: the oldest records go up to the first one a named consumer has not committed; it is reported", async () => {
      const { log } = await open();
      const cursors: string[] = [];
      for (let n = 0; n < 10; n++) cursors.push(...(await log.append([rec(n)])));
      const done = await log.consumer("done", { start: "oldest" });
      await done.commit((await readAll(done, 10))[9]!.cursor);
      const slow = await log.consumer("slow", { start: "oldest" });
      const read = await slow.read(6);
      await slow.commit(read[3]!.cursor); // 4 and 5 read, not committed
      const result = await log.retain({ ...keepNone, consumers: ["done", "slow", "never-opened"] });
      expect(result.holding).toEqual(["slow"]);
      // A backend may keep more (the file log: the segment the offset is in).
      const left = await kept(log);
      expect(left[0]).toBeGreaterThan(0);
      expect(left[0]).toBeLessThanOrEqual(4);
      expect(left).toEqual(range(left[0]!, 10));
      // Nothing it has not committed is gone: 4 and 5 come again after a restart.
      await slow.close();
      const again = await log.consumer("slow", { start: "oldest" });
      expect(numbers(await readAll(again, 6))).toEqual(range(4, 10));
      await again.commit(cursors[9]!);
      await again.close();
      // Caught up: nothing holds now, and what is left goes (the file log keeps the
      // segment being written).
      expect((await log.retain({ ...keepNone, consumers: ["done", "slow"] })).holding).toEqual([]);
      expect((await kept(log)).length).toBeLessThanOrEqual(1);
      await log.append([rec(10)]);
      const next = await log.consumer("slow", { start: "oldest" });
      expect(numbers(await readAll(next, 1))).toEqual([10]);
    });

    test("retain by age: records older than maxAgeMs go, held back by a reader's cursor the same way", async () => {
      const { log } = await open();
      const cursors: string[] = [];
      for (let n = 0; n < 8; n++) cursors.push(...(await log.append([rec(n)])));
      const later = Date.now() + 2 * 3_600_000; // every record is older than an hour then
      const result = await log.retain({
        maxAgeMs: 3_600_000,
        maxBytes: 1024 ** 3,
        consumers: [],
        readers: [{ id: "dedup", cursor: cursors[4]! }],
        now: later,
      });
      expect(result.holding).toEqual(["dedup"]);
      const left = await kept(log);
      expect(left[0]).toBeGreaterThan(0);
      expect(left[0]).toBeLessThanOrEqual(5);
      expect(left).toEqual(range(left[0]!, 8));
      const free = await log.retain({
        maxAgeMs: 3_600_000,
        maxBytes: 1024 ** 3,
        consumers: [],
        now: later,
      });
      expect(free.holding).toEqual([]);
      expect((await kept(log)).length).toBeLessThanOrEqual(1);
    });
  });
}
