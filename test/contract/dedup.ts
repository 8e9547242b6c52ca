import { afterEach, describe, expect, test } from "bun:test";
import type { DedupKey, DedupStore } from "../../src/dedup/interface.ts";

/**
 * The DedupStore contract (SPEC 5), run against every backend: each backend's test file
 * calls `dedupContract` with a way to open its store. Nothing here knows how a backend
 * keeps its keys; a Redis store runs the same suite.
 */
export interface DedupBackend {
  /**
   * Opens a store on fresh, empty storage. `now` is the store's clock (tests move it
   * instead of sleeping). `reopen` closes the store and opens it again on the same
   * storage, as a restart would.
   */
  open(opts: { windowSeconds: number; now: () => number }): Promise<OpenedStore>;
}

export interface OpenedStore {
  store: DedupStore;
  reopen(): Promise<DedupStore>;
  /** Closes whatever is still open and removes the storage. */
  cleanup(): Promise<void>;
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const keys = (sourceId: string, messageIds: string[]): DedupKey[] =>
  messageIds.map((messageId) => ({ sourceId, messageId }));
/** A log cursor (opaque to the store: only kept and handed back). */
const pos = (offset: number): string => `1:${offset}`;
const sorted = (s: Set<string>) => [...s].sort();

export function dedupContract(name: string, backend: DedupBackend): void {
  describe(`DedupStore contract: ${name}`, () => {
    let opened: OpenedStore | undefined;
    let clock = 0;
    afterEach(async () => {
      await opened?.cleanup();
      opened = undefined;
    });
    const open = async (windowSeconds = 3600) => {
      clock = Date.UTC(2025, 5, 1, 12);
      opened = await backend.open({ windowSeconds, now: () => clock });
      return opened;
    };

    test("a remembered id is seen, an unknown one is not, and sources are apart", async () => {
      const { store } = await open();
      const stored = ids("a", 20);
      expect((await store.seen("web", stored)).size).toBe(0);
      store.remember(keys("web", stored), pos(10));
      const asked = [...ids("new", 10), ...stored];
      expect(sorted(await store.seen("web", asked))).toEqual([...stored].sort());
      expect((await store.seen("app", stored)).size).toBe(0);
      expect((await store.seen("web", [])).size).toBe(0);
    });

    test("a thousand ids in one call: exactly the remembered ones come back", async () => {
      const { store } = await open();
      const stored = ids("bulk", 600);
      store.remember(keys("web", stored), pos(1));
      const fresh = ids("other", 400);
      const found = await store.seen("web", [
        ...fresh.slice(0, 200),
        ...stored,
        ...fresh.slice(200),
      ]);
      expect(sorted(found)).toEqual([...stored].sort());
    });

    test("any allowed messageId is a key of its own", async () => {
      const { store } = await open();
      const odd = [
        "x".repeat(100),
        "y".repeat(99),
        "__proto__",
        "constructor",
        "toString",
        "hasOwnProperty",
        "",
        " ",
        "ünïcödé ✓ 😀 中文",
        "e\u0301", // e + combining accent: not the same id as "é"
        "\u0000lead-nul",
        "mid\u0000nul",
        "line\nbreak",
        '{"json":true}',
        "\ud800", // a lone surrogate: JSON carries it, SQLite text cannot
        "\ud800\u0000",
      ];
      const twins = ["X".repeat(100), "é", "\ufffd", "lead-nul", "mid", "\ufffd\u0000"];
      store.remember(keys("web", odd), pos(5));
      expect(sorted(await store.seen("web", [...odd, ...twins]))).toEqual([...odd].sort());
      // Also once the keys are in durable storage, and after a restart.
      const reopened = await opened!.reopen();
      expect(sorted(await reopened.seen("web", [...odd, ...twins]))).toEqual([...odd].sort());
      expect((await reopened.seen("__proto__", odd)).size).toBe(0);
    });

    test("keys and the checkpoint survive a restart", async () => {
      const { store, reopen } = await open();
      expect(store.checkpoint()).toBeUndefined();
      const first = ids("first", 300);
      const second = ids("second", 50);
      store.remember(keys("web", first), pos(100));
      store.remember(keys("app", second), pos(200));
      const again = await reopen();
      expect(again.checkpoint()).toEqual(pos(200));
      expect((await again.seen("web", [...first, "new"])).size).toBe(300);
      expect((await again.seen("app", second)).size).toBe(50);
      expect((await again.seen("web", second)).size).toBe(0);
    });

    test("a key is a duplicate until exactly the end of the window, then new", async () => {
      const { store } = await open(60);
      store.remember(keys("web", ["early"]), pos(1));
      clock += 30_000;
      store.remember(keys("web", ["late"]), pos(2));
      clock += 29_999; // "early" is 59.999 s old
      expect(sorted(await store.seen("web", ["early", "late"]))).toEqual(["early", "late"]);
      clock += 1; // 60 s old: out of the window
      expect(sorted(await store.seen("web", ["early", "late"]))).toEqual(["late"]);
      clock += 30_000;
      expect((await store.seen("web", ["early", "late"])).size).toBe(0);
    });

    test("a key's own time counts, not when it was recorded (replay)", async () => {
      const { store } = await open(60);
      store.remember([{ sourceId: "web", messageId: "replayed", at: clock - 50_000 }], pos(1));
      store.remember([{ sourceId: "web", messageId: "too-old", at: clock - 61_000 }], pos(2));
      expect(sorted(await store.seen("web", ["replayed", "too-old"]))).toEqual(["replayed"]);
      clock += 10_000;
      expect((await store.seen("web", ["replayed"])).size).toBe(0);
    });

    test("an expired key remembered again is a duplicate again", async () => {
      const { store } = await open(60);
      store.remember(keys("web", ["again"]), pos(1));
      clock += 61_000;
      expect((await store.seen("web", ["again"])).size).toBe(0);
      store.remember(keys("web", ["again"]), pos(2));
      expect((await store.seen("web", ["again"])).size).toBe(1);
      clock += 59_000;
      expect((await store.seen("web", ["again"])).size).toBe(1);
    });

    test("the window holds across a restart with time moving on", async () => {
      const { store, reopen } = await open(60);
      store.remember(keys("web", ["old"]), pos(1));
      clock += 45_000;
      store.remember(keys("web", ["young"]), pos(2));
      const again = await reopen();
      clock += 14_000;
      expect(sorted(await again.seen("web", ["old", "young"]))).toEqual(["old", "young"]);
      clock += 2_000;
      expect(sorted(await again.seen("web", ["old", "young"]))).toEqual(["young"]);
    });

    test("stats count the keys in the window", async () => {
      const { store } = await open(60);
      store.remember(keys("web", ids("s", 25)), pos(1));
      store.remember(keys("app", ids("s", 5)), pos(2));
      expect(store.stats().keys).toBe(30);
      expect(store.stats().memoryBytes).toBeGreaterThan(0);
      await store.backlog();
    });
  });
}
