import type { AttemptDraft, LiveAttempt } from "./attempt.ts";
import { type LiveFilter, LiveSubscriber, matchesFilter } from "./subscriber.ts";

export interface LiveHubOptions {
  /** Attempts kept in memory for clients that connect later (refusals always, the rest while watched). */
  ringSize?: number;
  /** Unread bytes a client may leave before it is dropped. */
  maxBufferedBytes?: number;
  /** Attempts a new client gets from the ring before the live ones. */
  backlog?: number;
  now?: () => number;
}

const encoder = new TextEncoder();

/**
 * A ring entry: an attempt as published, stamped but not yet made a LiveAttempt (its
 * ISO time and the copy of the draft are built when a client reads it). With nobody
 * watching, refusals (every 429) still go into the ring, and building each one was a
 * tenth of a 429's CPU (bench/RESULTS.md, issue 11).
 */
interface Entry {
  id: number;
  ms: number;
  draft: AttemptDraft;
  built?: LiveAttempt;
}

function built(e: Entry): LiveAttempt {
  e.built ??= { id: e.id, at: new Date(e.ms).toISOString(), ...e.draft };
  return e.built;
}

/**
 * The live view's hub (SPEC 11): numbers each ingest attempt, keeps the last ones in
 * a bounded ring (memory only: attempts that were not stored are never written
 * anywhere) and fans them out to the connected clients, each with its own bounded
 * buffer. Producers check `watching` first: with no client, accepted and duplicate
 * events are not even described, so ingest copies nothing for the inspector.
 */
export class LiveHub {
  private readonly subscribers = new Set<LiveSubscriber>();
  private readonly ring: (Entry | undefined)[];
  private next = 0;
  private sequence = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly maxBufferedBytes: number;
  private readonly backlog: number;
  private readonly now: () => number;
  /** Clients dropped for reading too slowly since start. */
  droppedClients = 0;

  constructor(opts: LiveHubOptions = {}) {
    this.ring = new Array(opts.ringSize ?? 1000);
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 256 * 1024;
    this.backlog = opts.backlog ?? 200;
    this.now = opts.now ?? Date.now;
  }

  /** Whether any client watches now. */
  get watching(): boolean {
    return this.subscribers.size > 0;
  }

  get clients(): number {
    return this.subscribers.size;
  }

  /** Numbers an attempt, keeps it in the ring and sends it to every client that wants it. */
  publish(draft: AttemptDraft): void {
    const entry: Entry = { id: ++this.sequence, ms: this.now(), draft };
    this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.ring.length;
    if (this.subscribers.size === 0) return;
    const attempt = built(entry);
    let frame: Uint8Array | undefined;
    for (const s of this.subscribers) {
      if (!s.matches(attempt)) continue;
      frame ??= encodeAttempt(attempt);
      s.send(attempt, frame);
    }
  }

  /**
   * A new live client. It first gets the ring's matching attempts after `lastEventId`
   * (a reconnecting EventSource), or the last `backlog` of them, then every new one.
   */
  subscribe(filter: LiveFilter, lastEventId?: number): LiveSubscriber {
    const subscriber = new LiveSubscriber(filter, {
      maxBufferedBytes: this.maxBufferedBytes,
      onClose: (s) => {
        if (s.dropped) this.droppedClients++;
        this.subscribers.delete(s);
        if (this.subscribers.size === 0) this.stopTimer();
      },
    });
    subscriber.text("retry: 2000\n\n");
    const earlier = this.recent(filter, lastEventId);
    for (const a of earlier.slice(-this.backlog)) subscriber.text(frameText(a));
    this.subscribers.add(subscriber);
    this.timer ??= setInterval(() => this.tick(), 1000);
    return subscriber;
  }

  /** The ring's attempts matching `filter`, oldest first, after `afterId` if given. */
  recent(filter: LiveFilter, afterId?: number): LiveAttempt[] {
    const out: LiveAttempt[] = [];
    for (let i = 0; i < this.ring.length; i++) {
      const e = this.ring[(this.next + i) % this.ring.length];
      if (e === undefined || (afterId !== undefined && e.id <= afterId)) continue;
      if (matchesFilter(filter, e.draft)) out.push(built(e));
    }
    return out;
  }

  /** Ends every client's stream (shutdown). */
  close(): void {
    for (const s of [...this.subscribers]) s.close();
    this.stopTimer();
  }

  private tick(): void {
    const at = new Date(this.now()).toISOString();
    for (const s of [...this.subscribers]) s.rate(at);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function frameText(a: LiveAttempt): string {
  return `id: ${a.id}\nevent: attempt\ndata: ${JSON.stringify(a)}\n\n`;
}

function encodeAttempt(a: LiveAttempt): Uint8Array {
  return encoder.encode(frameText(a));
}
