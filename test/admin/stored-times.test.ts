import { expect, test } from "bun:test";
import { StoredTimes } from "../../src/admin/search/stored-times.ts";

const at = (segment: number, offset: number) => ({ segment, offset });

/** Appends ending at 1:100 and 1:250 (same ms), 1:400, then 2:50 in a new segment. */
function filled(capacity?: number) {
  const times = new StoredTimes(at(1, 0), capacity);
  times.add(at(1, 100), 1000);
  times.add(at(1, 250), 1000);
  times.add(at(1, 400), 1005);
  times.add(at(2, 50), 1010);
  return times;
}

test("a record's time is that of the first append that ends past it", () => {
  const times = filled();
  expect(times.timeOf(at(1, 0))).toBe(1000);
  expect(times.timeOf(at(1, 249))).toBe(1000);
  expect(times.timeOf(at(1, 250))).toBe(1005);
  expect(times.timeOf(at(1, 399))).toBe(1005);
  expect(times.timeOf(at(2, 0))).toBe(1010);
  expect(times.timeOf(at(2, 49))).toBe(1010);
  // Past every append known: not known yet.
  expect(times.timeOf(at(2, 50))).toBeUndefined();
  // Before the log was followed: never known.
  const later = new StoredTimes(at(1, 100));
  later.add(at(1, 200), 2000);
  expect(later.timeOf(at(1, 50))).toBeUndefined();
  expect(later.timeOf(at(1, 100))).toBe(2000);
});

test("the oldest entries give way; their records are no longer known", () => {
  // Two entries kept: the one ending at 1:250 gave way.
  const times = filled(2);
  expect(times.timeOf(at(1, 0))).toBeUndefined();
  expect(times.timeOf(at(1, 249))).toBeUndefined();
  expect(times.timeOf(at(1, 250))).toBe(1005);
  expect(times.timeOf(at(1, 400))).toBe(1010);
});

test("drained entries reach a receiver once, and it answers the same", () => {
  const sender = filled();
  const receiver = new StoredTimes(at(1, 0));
  receiver.receive(sender.drain()!);
  expect(sender.drain()).toBeUndefined();
  // Same millisecond as a drained entry: a new entry (sent ones never change).
  sender.add(at(2, 80), 1010);
  sender.add(at(2, 90), 1010);
  sender.add(at(2, 120), 1020);
  const update = sender.drain()!;
  expect(update.from).toEqual(at(2, 50));
  expect(update.times).toEqual([2, 90, 1010, 2, 120, 1020]);
  receiver.receive(update);
  for (const [segment, offset] of [
    [1, 0],
    [1, 260],
    [2, 10],
    [2, 60],
    [2, 100],
    [2, 119],
    [2, 120],
  ] as const) {
    expect({ segment, offset, t: receiver.timeOf(at(segment, offset)) }).toEqual({
      segment,
      offset,
      t: sender.timeOf(at(segment, offset)),
    });
  }
});

test("entries the sender dropped before draining leave a gap the receiver does not guess over", () => {
  const sender = filled(2);
  const receiver = new StoredTimes(at(1, 0));
  const update = sender.drain()!;
  expect(update.from).toEqual(at(1, 250));
  receiver.receive(update);
  expect(receiver.timeOf(at(1, 100))).toBeUndefined();
  expect(receiver.timeOf(at(1, 300))).toBe(1005);
  expect(receiver.timeOf(at(2, 0))).toBe(1010);
});
