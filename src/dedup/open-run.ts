import type { LogCursor } from "../log/stream.ts";
import type { KeyBatch } from "./protocol.ts";

/**
 * The keys of one slot that are not on disk yet: looked up exactly (full key) until the
 * writer thread confirms the run, and handed to it in pieces as they arrive so that no
 * single message is large. Keys are indexed by their hash in an open-addressing table of
 * typed arrays: cheaper per key than a Map of strings, and any string is a key
 * (`__proto__` too) since ids are only compared, never used as property names.
 */
export class OpenRun {
  private hashes = new Float64Array(1024);
  private ats = new Float64Array(1024);
  /** Per key, the index of its source in `sourceNames`. */
  private sourceIndexes = new Uint32Array(1024);
  private lengths = new Uint32Array(1024);
  private readonly sourceNames: string[] = [];
  private lastSource = -1;
  private readonly messages: string[] = [];
  /** Position + 1 of the key in each place, 0 for free; always at most half full. */
  private index = new Int32Array(2048);
  size = 0;
  /** Keys already handed to the writer. */
  sent = 0;
  /** The log position its keys cover (the last `remember` of the slot). */
  upTo: LogCursor | null = null;
  sealed = false;

  constructor(readonly slot: number) {}

  /** When `messageId` of `sourceId` (hash `h`) was seen, if it is in this run. */
  at(sourceId: string, messageId: string, h: number): number | undefined {
    const i = this.find(sourceId, messageId, h);
    return i < 0 ? undefined : this.ats[i];
  }

  /** Adds a key; false if the run has it already. */
  add(sourceId: string, messageId: string, h: number, at: number): boolean {
    if (this.find(sourceId, messageId, h) >= 0) return false;
    if (this.size === this.hashes.length) this.grow();
    const i = this.size++;
    this.hashes[i] = h;
    this.ats[i] = at;
    this.sourceIndexes[i] = this.sourceIndex(sourceId);
    this.lengths[i] = messageId.length;
    this.messages.push(messageId);
    this.place(h, i);
    return true;
  }

  /** The hash of the key at position `i` (for refilling a resized filter segment). */
  hashAt(i: number): number {
    return this.hashes[i]!;
  }

  /** The keys not yet handed to the writer, as one message's fields. */
  takeUnsent(): KeyBatch {
    const from = this.sent;
    this.sent = this.size;
    return {
      hashes: this.hashes.slice(from, this.size),
      ats: this.ats.slice(from, this.size),
      sources: this.sourceIndexes.slice(from, this.size),
      sourceNames: this.sourceNames,
      text: this.messages.slice(from).join(""),
      lengths: this.lengths.slice(from, this.size),
    };
  }

  /** Batches of requests come from one source at a time: the last one is checked first. */
  private sourceIndex(sourceId: string): number {
    const last = this.lastSource;
    if (last >= 0 && this.sourceNames[last] === sourceId) return last;
    let i = this.sourceNames.indexOf(sourceId);
    if (i < 0) i = this.sourceNames.push(sourceId) - 1;
    this.lastSource = i;
    return i;
  }

  private find(sourceId: string, messageId: string, h: number): number {
    const index = this.index;
    const mask = index.length - 1;
    for (let p = h & mask; ; p = (p + 1) & mask) {
      const v = index[p]!;
      if (v === 0) return -1;
      const i = v - 1;
      if (
        this.hashes[i] === h &&
        this.messages[i] === messageId &&
        this.sourceNames[this.sourceIndexes[i]!] === sourceId
      ) {
        return i;
      }
    }
  }

  private place(h: number, i: number): void {
    const index = this.index;
    const mask = index.length - 1;
    let p = h & mask;
    while (index[p] !== 0) p = (p + 1) & mask;
    index[p] = i + 1;
  }

  private grow(): void {
    const n = this.hashes.length * 2;
    this.hashes = widen(this.hashes, new Float64Array(n));
    this.ats = widen(this.ats, new Float64Array(n));
    this.sourceIndexes = widen(this.sourceIndexes, new Uint32Array(n));
    this.lengths = widen(this.lengths, new Uint32Array(n));
    this.index = new Int32Array(n * 2);
    for (let i = 0; i < this.size; i++) this.place(this.hashes[i]!, i);
  }

  /** Rough bytes held per key (arrays, index and the id strings), for stats. */
  static readonly BYTES_PER_KEY = 120;
}

function widen<T extends Float64Array | Uint32Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}
