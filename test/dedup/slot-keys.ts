import type { DedupKey } from "../../src/dedup/interface.ts";

/** The store of slot-rule.test.ts and its child: a 60 s window cut into 1 s slots, 4 a slice. */
export const SLOT_OPTS = {
  windowSeconds: 60,
  geometry: { runMs: 1000, slotsPerSlice: 4 },
  snapshotMinKeys: 1000,
};

/** `n` keys of source "web": `${prefix}-0` … */
export function slotKeys(prefix: string, n: number): DedupKey[] {
  return Array.from({ length: n }, (_, i) => ({ sourceId: "web", messageId: `${prefix}-${i}` }));
}
