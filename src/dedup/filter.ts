import { type SlotRange, slotOfTag, TAGS } from "./geometry.ts";

/**
 * The in-memory front of the dedup store: for each key, a 16-bit fingerprint of its hash
 * and a 16-bit tag naming the slot (run) it was written in, in one 32-bit entry. A lookup
 * reads two buckets of 8 entries (two cache lines) whatever the window holds, and a
 * match names the one run on disk that can confirm it; no match means "new" without a
 * disk read. A match is only "maybe": the caller compares the full key.
 *
 * Entries never move once written (an insert takes a free or expired place in the
 * emptier of the key's two buckets), so a copy taken while the table is in use holds
 * every entry written before the copy began: that is what makes the snapshots of
 * sqlite.ts consistent without stopping inserts. The table is split into SEGMENTS by
 * the hash's top bits, and each segment is resized on its own (rebuilt from disk by the
 * writer thread), so growing never needs the memory of a second whole table.
 *
 * The tables live in SharedArrayBuffers: the writer thread copies them for snapshots
 * and fills a resized one while the main thread keeps inserting (compare-and-swap).
 */

export const SEGMENTS = 64;
export const BUCKET_ENTRIES = 8;
/** Buckets of a new segment (2 KB). */
export const MIN_BUCKETS = 64;
/** Load a resized segment starts at: 1.5x room before the next resize at MAX_LOAD. */
export const TARGET_LOAD = 0.6;
/** Load at which a segment is resized (two choices of 8 rarely overflow below it). */
export const MAX_LOAD = 0.9;
const TWO_POW_21 = 2_097_152;
const TWO_POW_32 = 4_294_967_296;
const TAG_MASK = TAGS - 1;

/** Where one 53-bit key hash goes: its segment, two bucket choices and its fingerprint. */
export class Placement {
  seg = 0;
  /** 32-bit values scaled to a segment's bucket count (so a resized segment needs no rehash). */
  x1 = 0;
  x2 = 0;
  fp = 0;

  /** Fills this placement for hash `h` (an integer in [0, 2^53)); reused to avoid allocation. */
  of(h: number): this {
    const hi = Math.floor(h / TWO_POW_21); // the top 32 bits
    const lo = h - hi * TWO_POW_21; // the low 21 bits
    this.seg = hi >>> 26;
    this.x1 = (hi << 6) >>> 0;
    // Independent of x1's bits, never 0 (0 marks a free entry).
    this.fp = lo & 0xffff || 1;
    this.x2 = fmix32((hi ^ Math.imul(lo, 0x9e3779b1)) >>> 0);
    return this;
  }
}

/** MurmurHash3's finalizer: spreads every input bit over the output. */
function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function live(entry: number, range: SlotRange): boolean {
  return slotOfTag(entry & TAG_MASK, range.current) >= range.first;
}

/** One segment's table of buckets. Each thread holds its own object over the shared buffer. */
export class FilterSegment {
  /**
   * Int32, not Uint32: an entry with its top bit set would be a double in the engine
   * (half of them, by fingerprint), and every scan of a bucket would slow down for it.
   */
  readonly entries: Int32Array;
  readonly buckets: number;
  /**
   * Keys that found no place in either bucket, as [hash, tag] pairs, matched by their
   * exact hash. Rare below 90% load; a growing stash makes the owner resize the segment.
   */
  stash: number[] = [];
  /** Entries this thread wrote into free places minus those it cleared (see `sweep`). */
  used: number;

  constructor(
    readonly buffer: SharedArrayBuffer,
    used = 0,
  ) {
    this.entries = new Int32Array(buffer);
    this.buckets = this.entries.length / BUCKET_ENTRIES;
    this.used = used;
  }

  static allocate(buckets: number): FilterSegment {
    return new FilterSegment(new SharedArrayBuffer(buckets * BUCKET_ENTRIES * 4));
  }

  get capacity(): number {
    return this.entries.length;
  }

  /** Appends to `out` the live slots whose entries match `p` (possibly none, rarely a false one). */
  find(p: Placement, h: number, range: SlotRange, out: number[]): void {
    const e = this.entries;
    const b1 = this.first(p.x1);
    const b2 = this.first(p.x2);
    for (let i = b1; i < b1 + BUCKET_ENTRIES; i++) {
      const v = e[i]!;
      if (v >>> 16 === p.fp) this.candidate(v & TAG_MASK, range, out);
    }
    if (b2 !== b1) {
      for (let i = b2; i < b2 + BUCKET_ENTRIES; i++) {
        const v = e[i]!;
        if (v >>> 16 === p.fp) this.candidate(v & TAG_MASK, range, out);
      }
    }
    const s = this.stash;
    for (let i = 0; i < s.length; i += 2) if (s[i] === h) this.candidate(s[i + 1]!, range, out);
  }

  /**
   * Records `h` as written in the slot tagged `tag`. Takes a free or expired place in the
   * bucket with fewer live entries; with both buckets full of live entries, the key goes
   * to the stash. Safe against a concurrent insert by the other thread (compare-and-swap).
   */
  insert(p: Placement, h: number, tag: number, range: SlotRange): void {
    const e = this.entries;
    const entry = (p.fp << 16) | tag;
    const b1 = this.first(p.x1);
    const b2 = this.first(p.x2);
    for (;;) {
      let free1 = -1;
      let free2 = -1;
      // What each free place held when seen (0, or an expired entry): the swap below
      // expects exactly that. Reading it again just before the swap would take a live
      // entry the other thread wrote there meanwhile for free, and overwrite its key.
      let old1 = 0;
      let old2 = 0;
      let live1 = 0;
      let live2 = 0;
      for (let i = b1; i < b1 + BUCKET_ENTRIES; i++) {
        const v = e[i]!;
        if (v === entry) return; // already recorded
        if (v !== 0 && live(v, range)) live1++;
        else if (free1 < 0) {
          free1 = i;
          old1 = v;
        }
      }
      if (b2 !== b1) {
        for (let i = b2; i < b2 + BUCKET_ENTRIES; i++) {
          const v = e[i]!;
          if (v === entry) return;
          if (v !== 0 && live(v, range)) live2++;
          else if (free2 < 0) {
            free2 = i;
            old2 = v;
          }
        }
      }
      const first = free1 >= 0 && (free2 < 0 || live1 <= live2);
      const at = first ? free1 : free2;
      if (at < 0) {
        this.stash.push(h, tag);
        return;
      }
      const old = first ? old1 : old2;
      if (Atomics.compareExchange(e, at, old, entry) === old) {
        if (old === 0) this.used++;
        return;
      }
      // The other thread took the place first: look again.
    }
  }

  /**
   * Clears expired entries among `count` entries from `from`, and expired stash pairs when
   * the pass reaches the end. Returns where the next call goes on (0 after a full pass).
   */
  sweep(from: number, count: number, range: SlotRange): number {
    const e = this.entries;
    const end = Math.min(e.length, from + count);
    for (let i = from; i < end; i++) {
      const v = e[i]!;
      if (v !== 0 && !live(v, range) && Atomics.compareExchange(e, i, v, 0) === v) this.used--;
    }
    if (end < e.length) return end;
    const kept: number[] = [];
    for (let i = 0; i < this.stash.length; i += 2) {
      const tag = this.stash[i + 1]!;
      if (slotOfTag(tag, range.current) >= range.first) kept.push(this.stash[i]!, tag);
    }
    this.stash = kept;
    return 0;
  }

  /** Live entries (a full scan: for sizing decisions, not per key). */
  countLive(range: SlotRange): number {
    // Indexed loops: for-of over a typed array on shared memory is many times slower.
    const e = this.entries;
    let n = this.stash.length / 2;
    for (let i = 0; i < e.length; i++) {
      const v = e[i]!;
      if (v !== 0 && live(v, range)) n++;
    }
    return n;
  }

  /** Non-empty entries (a full scan). */
  countUsed(): number {
    const e = this.entries;
    let n = 0;
    for (let i = 0; i < e.length; i++) if (e[i] !== 0) n++;
    return n;
  }

  private candidate(tag: number, range: SlotRange, out: number[]): void {
    const slot = slotOfTag(tag, range.current);
    if (slot >= range.first) out.push(slot);
  }

  private first(x: number): number {
    return Math.floor((x * this.buckets) / TWO_POW_32) * BUCKET_ENTRIES;
  }
}

/** Buckets for a segment that should hold `keys` live keys at `load` (by default the load a resize aims for). */
export function bucketsFor(keys: number, load = TARGET_LOAD): number {
  return Math.max(MIN_BUCKETS, Math.ceil(keys / (BUCKET_ENTRIES * load)));
}
