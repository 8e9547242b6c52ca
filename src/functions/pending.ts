import { FunctionTimeoutError } from "./errors.ts";

/** A chain run waiting for its host's answer. */
export interface PendingCall<M> {
  resolve: (json: string) => void;
  reject: (err: Error) => void;
  /** What to send the host (again, if it is restarted before the call was sent). */
  message: M;
  limitMs: number;
  /** A backstop (epoch ms): the host's own watchdog answers sooner. */
  deadline: number;
  /** Whether the current host has it (else it waits for a host to be ready). */
  sent: boolean;
}

/** The calls a host has not answered yet, by id. */
export class PendingCalls<M> {
  private readonly calls = new Map<number, PendingCall<M>>();
  private seq = 0;

  /** Registers a call; returns its id and the promise of its answer. */
  add(make: (id: number) => { message: M; limitMs: number; deadline: number }): {
    id: number;
    call: PendingCall<M>;
    answer: Promise<string>;
  } {
    this.seq = this.seq >= 0x7ffffff0 ? 1 : this.seq + 1;
    const id = this.seq;
    // Made first: it serialises the event, which may throw (nested too deeply), and
    // then nothing is registered and the caller gets the error as it is.
    const made = make(id);
    let call!: PendingCall<M>;
    const answer = new Promise<string>((resolve, reject) => {
      call = { resolve, reject, sent: false, ...made };
    });
    this.calls.set(id, call);
    return { id, call, answer };
  }

  /** Takes a call out to answer it (undefined if it was answered or failed already). */
  settle(id: number): PendingCall<M> | undefined {
    const call = this.calls.get(id);
    this.calls.delete(id);
    return call;
  }

  /** Fails the calls `which` picks; returns how many. */
  fail(which: (c: PendingCall<M>) => boolean, error: (c: PendingCall<M>) => Error): number {
    let n = 0;
    for (const [id, c] of this.calls) {
      if (!which(c)) continue;
      this.calls.delete(id);
      c.reject(error(c));
      n++;
    }
    return n;
  }

  /** Fails with a timeout every call past its deadline. */
  expire(now: number): void {
    this.fail(
      (c) => c.deadline <= now,
      (c) => new FunctionTimeoutError(undefined, c.limitMs),
    );
  }

  /** Calls not yet sent to a host. */
  unsent(): PendingCall<M>[] {
    return [...this.calls.values()].filter((c) => !c.sent);
  }

  get size(): number {
    return this.calls.size;
  }
}
