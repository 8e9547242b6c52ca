/**
 * Shared memory in which a worker records which call and which function of its chain
 * it runs, and since when. The host's watchdog reads it without a message round trip,
 * so a per-function timeout costs nothing on the fast path, and a worker stuck in an
 * endless loop (which can answer no message) is still cut at its function's timeout.
 *
 * Layout: Int32 call id, Int32 function index, Float64 start time (epoch ms).
 */
/** The call id under which a worker records loading the function modules. */
export const LOAD_CALL_ID = -1;

// Taken before any user code runs in the worker: a function that replaces Date.now or
// Atomics.store (to make the watchdog think it just started) changes nothing here.
const now = Date.now;
const atomicStore = Atomics.store;
const atomicLoad = Atomics.load;

export class Progress {
  private readonly ints: Int32Array;
  private readonly started: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(16)) {
    this.ints = new Int32Array(buffer, 0, 2);
    this.started = new Float64Array(buffer, 8, 1);
  }

  /** Worker side: function `index` of call `callId` starts now. */
  enter(callId: number, index: number): void {
    // A tiny seqlock: the index is -1 while the slot changes, so a reader never pairs
    // one function's index with another's start time.
    atomicStore(this.ints, 1, -1);
    atomicStore(this.ints, 0, callId);
    this.started[0] = now();
    atomicStore(this.ints, 1, index);
  }

  /**
   * Host side: where call `callId` is; undefined if the worker has not begun it, index
   * -1 if it is between two functions right now (look again a moment later).
   */
  read(callId: number): { index: number; startedAt: number } | undefined {
    if (atomicLoad(this.ints, 0) !== callId) return undefined;
    const index = atomicLoad(this.ints, 1);
    const startedAt = this.started[0]!;
    if (index < 0 || atomicLoad(this.ints, 1) !== index) return { index: -1, startedAt };
    return { index, startedAt };
  }
}
