/**
 * How the dedup window is cut in time. A *slot* is a short stretch (runMs) whose keys
 * are written together, once, as one immutable sorted run; a *slice* is a run of slots
 * that shares one SQLite table and is expired by dropping that table whole. Slots are
 * numbered from the epoch (`floor(ms / runMs)`), so a number means the same on every
 * start.
 */

/** Filter entries carry a slot's number modulo this (16 bits beside a 16-bit fingerprint). */
export const TAGS = 65_536;
/**
 * Slots a window may span: half the tag space. An entry whose slot left the window is
 * cleared by the sweep long before its tag comes round again, so a tag always names one
 * slot.
 */
const MAX_LIVE_SLOTS = TAGS / 2;
/** Slices per window: expiry drops about 1/24 of the window at a time (an hour of 24 h). */
const SLICES_PER_WINDOW = 24;
/** A shorter slot only makes more, smaller runs: 200 ms is plenty for small windows. */
const MIN_RUN_MS = 200;

export interface Geometry {
  /** Milliseconds per slot: the keys of one slot are written as one run. */
  runMs: number;
  /** Slots per slice (SQLite table). */
  slotsPerSlice: number;
}

/** The geometry for a window: 2.75 s slots and 1 h slices for 24 h. */
export function geometryFor(windowMs: number): Geometry {
  const sliceMs = windowMs / SLICES_PER_WINDOW;
  const runMs = Math.max(MIN_RUN_MS, Math.ceil((windowMs + sliceMs) / (MAX_LIVE_SLOTS - 2)));
  return { runMs, slotsPerSlice: Math.max(1, Math.round(sliceMs / runMs)) };
}

/** Whether keys laid out with `g` can serve a window of `windowMs` (tags stay unambiguous). */
export function covers(g: Geometry, windowMs: number): boolean {
  return (windowMs + g.runMs * g.slotsPerSlice) / g.runMs <= MAX_LIVE_SLOTS;
}

/**
 * The live range of slots at one moment: `current` is the slot new keys go to, `first`
 * the oldest slot that may still hold a key younger than the window. Shared with the
 * writer thread as plain numbers.
 */
export interface SlotRange {
  current: number;
  first: number;
}

/** The slot a tag stands for, given the current slot (tags are slot numbers modulo TAGS). */
export function slotOfTag(tag: number, current: number): number {
  return current - ((current - tag) & (TAGS - 1));
}

/** Time arithmetic for one geometry and window. */
export class SlotClock {
  constructor(
    readonly geometry: Geometry,
    readonly windowMs: number,
  ) {}

  slotAt(ms: number): number {
    return Math.floor(ms / this.geometry.runMs);
  }

  sliceOf(slot: number): number {
    return Math.floor(slot / this.geometry.slotsPerSlice);
  }

  /** The slots at `now`: a slot is live while a key written in it may be inside the window. */
  range(now: number, current: number): SlotRange {
    // A key written in slot s was seen before (s + 1) * runMs.
    return { current, first: this.slotAt(now - this.windowMs) };
  }

  /** Whether every key of `slice` is older than the window at `now` (so it can be dropped). */
  sliceExpired(slice: number, now: number): boolean {
    const lastSlot = (slice + 1) * this.geometry.slotsPerSlice - 1;
    return (lastSlot + 1) * this.geometry.runMs <= now - this.windowMs;
  }
}
