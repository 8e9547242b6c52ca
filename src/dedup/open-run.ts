import type { LogPosition } from "../log/interface.ts";
import type { KeyBatch } from "./protocol.ts";

/**
 * The keys of one slot that are not on disk yet: looked up exactly (full key) until the
 * writer thread confirms the run, and handed to it in pieces as they arrive so that no
 * single message is large.
 */
export class OpenRun {
  /** sourceId -> messageId -> seen at (ms). A Map: any string is a key, `__proto__` too. */
  readonly keys = new Map<string, Map<string, number>>();
  readonly hashes: number[] = [];
  readonly sources: string[] = [];
  readonly messages: string[] = [];
  readonly ats: number[] = [];
  /** Keys already handed to the writer. */
  sent = 0;
  /** The log position its keys cover (the last `remember` of the slot). */
  upTo: LogPosition | null = null;
  sealed = false;

  constructor(readonly slot: number) {}

  get size(): number {
    return this.hashes.length;
  }

  /** When `messageId` of `sourceId` was seen, if it is in this run. */
  at(sourceId: string, messageId: string): number | undefined {
    return this.keys.get(sourceId)?.get(messageId);
  }

  /** Adds a key; false if the run has it already. */
  add(sourceId: string, messageId: string, hash: number, at: number): boolean {
    let ids = this.keys.get(sourceId);
    if (!ids) {
      ids = new Map();
      this.keys.set(sourceId, ids);
    }
    if (ids.has(messageId)) return false;
    ids.set(messageId, at);
    this.hashes.push(hash);
    this.sources.push(sourceId);
    this.messages.push(messageId);
    this.ats.push(at);
    return true;
  }

  /** The keys not yet handed to the writer, as one message's fields. */
  takeUnsent(): KeyBatch {
    const from = this.sent;
    const n = this.size - from;
    this.sent = this.size;
    const names = new Map<string, number>();
    const sources = new Uint32Array(n);
    const lengths = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const source = this.sources[from + i]!;
      let index = names.get(source);
      if (index === undefined) {
        index = names.size;
        names.set(source, index);
      }
      sources[i] = index;
      lengths[i] = this.messages[from + i]!.length;
    }
    return {
      hashes: Float64Array.from(this.hashes.slice(from)),
      ats: Float64Array.from(this.ats.slice(from)),
      sources,
      sourceNames: [...names.keys()],
      text: this.messages.slice(from).join(""),
      lengths,
    };
  }

  /** Rough bytes held per key (strings, maps and arrays), for stats. */
  static readonly BYTES_PER_KEY = 160;
}
