import { afterEach, describe, expect, test } from "bun:test";
import type { DeadLetterStore, NewDeadLetter } from "../../src/delivery/dead-letters/interface.ts";
import type { StoredEvent } from "../../src/events/schema.ts";

/**
 * The DeadLetterStore contract (src/delivery/dead-letters/interface.ts): what every
 * backend (SQLite in the data dir, Redis when scaled out) must do. A backend's test
 * file calls `deadLetterContract` with a fixture that makes an empty store; `reopen`
 * closes it and opens the same storage again (a restart).
 */
export interface DeadLetterFixture {
  store: DeadLetterStore;
  reopen(): Promise<DeadLetterStore>;
  cleanup(): Promise<void>;
}

function event(messageId: string, extra: Record<string, unknown> = {}): StoredEvent {
  return {
    type: "track",
    event: "Signed Up",
    userId: "u1",
    messageId,
    receivedAt: "2026-01-01T00:00:00.000Z",
    timestamp: "2026-01-01T00:00:00.000Z",
    sourceId: "web",
    keyId: "wk1",
    ...extra,
  } as StoredEvent;
}

function letter(connectionId: string, ids: string[], at?: number): NewDeadLetter {
  return {
    connectionId,
    stage: "destination",
    events: ids.map((id) => event(id, { properties: { n: id, nested: { ok: true } } })),
    origins: ids.map((id) => ({ sourceId: "web", messageId: id, receivedAt: 1_767_225_600_000 })),
    failure: { status: 400, message: "HTTP 400", answer: '{"error":"no"}' },
    attempts: 1,
    at,
  };
}

export function deadLetterContract(name: string, make: () => Promise<DeadLetterFixture>): void {
  describe(`DeadLetterStore contract: ${name}`, () => {
    let fx: DeadLetterFixture | undefined;
    let store: DeadLetterStore;
    const open = async () => {
      fx = await make();
      store = fx.store;
    };
    afterEach(async () => {
      await fx?.cleanup();
      fx = undefined;
    });

    test("a letter keeps everything needed to send it again, across a reopen", async () => {
      await open();
      const added = await store.add({ ...letter("con_a", ["m1", "m2"], 1_700_000_000_000) });
      expect(added.id).toBeString();
      expect(added).toMatchObject({
        connectionId: "con_a",
        createdAt: 1_700_000_000_000,
        lastAttemptAt: 1_700_000_000_000,
        attempts: 1,
      });
      store = await fx!.reopen();
      const got = await store.get("con_a", added.id);
      expect(got).toEqual(added);
      expect(got!.events[1]).toMatchObject({
        messageId: "m2",
        properties: { nested: { ok: true } },
      });
      expect(got!.failure).toEqual({ status: 400, message: "HTTP 400", answer: '{"error":"no"}' });
    });

    test("letters are listed per connection, oldest first, paged after an id", async () => {
      await open();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await store.add(letter("con_a", [`a${i}`]))).id);
      await store.add(letter("con_b", ["b0"]));
      const all = await store.list("con_a");
      expect(all.map((l) => l.id)).toEqual(ids);
      expect(all.map((l) => l.events[0]!.messageId)).toEqual(["a0", "a1", "a2", "a3", "a4"]);
      const first = await store.list("con_a", { limit: 2 });
      expect(first.map((l) => l.id)).toEqual(ids.slice(0, 2));
      const rest = await store.list("con_a", { after: first.at(-1)!.id, limit: 10 });
      expect(rest.map((l) => l.id)).toEqual(ids.slice(2));
      expect(await store.list("con_none")).toEqual([]);
      expect(await store.get("con_b", ids[0]!)).toBeUndefined(); // another connection's id
    });

    test("counts give letters and events per connection", async () => {
      await open();
      await store.add(letter("con_a", ["1", "2", "3"]));
      await store.add(letter("con_a", ["4"]));
      await store.add(letter("con_b", ["5", "6"]));
      const counts = await store.counts();
      expect(counts.get("con_a")).toEqual({ letters: 2, events: 4 });
      expect(counts.get("con_b")).toEqual({ letters: 1, events: 2 });
      expect(counts.has("con_c")).toBe(false);
    });

    test("a redrive that fails again keeps the letter with the new failure and one more attempt", async () => {
      await open();
      const added = await store.add(letter("con_a", ["m1"], 1000));
      await store.failedAgain("con_a", added.id, { status: 503, message: "HTTP 503" }, 5000);
      const got = await store.get("con_a", added.id);
      expect(got).toMatchObject({
        attempts: 2,
        createdAt: 1000,
        lastAttemptAt: 5000,
        failure: { status: 503, message: "HTTP 503" },
      });
      expect(got!.events.map((e) => e.messageId)).toEqual(["m1"]);
    });

    test("remove takes a delivered letter away once; a second remove says it was gone", async () => {
      await open();
      const a = await store.add(letter("con_a", ["m1"]));
      const b = await store.add(letter("con_a", ["m2"]));
      expect(await store.remove("con_a", a.id)).toBe(true);
      expect(await store.remove("con_a", a.id)).toBe(false);
      expect(await store.remove("con_b", b.id)).toBe(false); // not that connection's
      expect((await store.list("con_a")).map((l) => l.id)).toEqual([b.id]);
      store = await fx!.reopen();
      expect((await store.counts()).get("con_a")).toEqual({ letters: 1, events: 1 });
    });

    test("ids are unique and in creation order even when added at once", async () => {
      await open();
      const added = await Promise.all(
        Array.from({ length: 50 }, (_, i) => store.add(letter("con_a", [`p${i}`]))),
      );
      expect(new Set(added.map((l) => l.id)).size).toBe(50);
      const listed = await store.list("con_a", { limit: 100 });
      expect(listed.map((l) => l.id)).toEqual([...added.map((l) => l.id)].sort());
    });
  });
}
