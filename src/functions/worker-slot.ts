import { workerEntry } from "./entrypoints.ts";
import { LOAD_CALL_ID, Progress } from "./progress.ts";
import {
  type DoneRun,
  decodeDone,
  type ErrorInfo,
  type FromWorker,
  type LoadReport,
  type RunEnvelope,
  type ServiceReply,
  type ServiceRequest,
  type ToWorker,
  type WorkerInit,
} from "./protocol.ts";

/** A chain step as the watchdog sees it. */
export interface StepLimit {
  id: string;
  timeoutMs: number;
  /** The shortest timeout among the steps after this one (Infinity for the last). */
  nextMinMs: number;
}

/** A chain's steps with their timeouts, ready for the watchdog. */
export function stepLimits(steps: { id: string; timeoutMs: number }[]): StepLimit[] {
  let nextMinMs = Number.POSITIVE_INFINITY;
  const out: StepLimit[] = [];
  for (let i = steps.length - 1; i >= 0; i--) {
    out[i] = { ...steps[i]!, nextMinMs };
    nextMinMs = Math.min(nextMinMs, steps[i]!.timeoutMs);
  }
  return out;
}

export interface SlotEvents {
  ready(slot: WorkerSlot, functions: LoadReport[]): void;
  done(slot: WorkerSlot, done: DoneRun): void;
  timedOut(slot: WorkerSlot, callId: number, step: StepLimit): void;
  failed(slot: WorkerSlot, callId: number, error: ErrorInfo): void;
  /** User code asks the server for something (ctx.store, ctx.fetch). */
  request(slot: WorkerSlot, generation: number, id: number, request: ServiceRequest): void;
}

const WORKER_ENTRY = workerEntry();
const RESTART_DELAY_MS = 1000;

/**
 * One Bun Worker of the host and its watchdog. The worker runs one chain at a time;
 * each function of it is held to its own timeout (read from shared progress, see
 * progress.ts). A worker past its timeout, or one that dies, is terminated and
 * replaced by a fresh one, which loads the function modules again.
 */
export class WorkerSlot {
  state: "loading" | "idle" | "busy" = "loading";
  /** Bumped with each new worker: replies meant for a replaced worker are dropped. */
  generation = 0;
  private worker!: Worker;
  private progress!: Progress;
  private call: { id: number; steps: StepLimit[]; sentAt: number } | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly init: Omit<WorkerInit, "progress">,
    private readonly loadTimeoutMs: number,
    private readonly events: SlotEvents,
  ) {
    this.start();
  }

  /** Sends a chain run to this (idle) worker. */
  run(call: RunEnvelope, steps: StepLimit[]): void {
    this.state = "busy";
    this.call = { id: call.id, steps, sentAt: Date.now() };
    this.post(call.json);
    const first = steps[0];
    if (first) this.timer = setTimeout(this.watch, Math.min(first.timeoutMs, first.nextMinMs));
  }

  /** Answers request `id` of worker generation `generation` (a replaced worker gets nothing). */
  reply(generation: number, id: number, reply: ServiceReply): void {
    if (generation === this.generation && !this.closed) this.post({ t: "reply", id, reply });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.worker.terminate();
  }

  private start(): void {
    const generation = ++this.generation;
    const worker = new Worker(WORKER_ENTRY, { env: {} } as WorkerOptions);
    this.worker = worker;
    this.progress = new Progress();
    this.state = "loading";
    worker.onmessage = (e: MessageEvent<FromWorker>) => {
      if (generation === this.generation) this.onMessage(e.data, generation);
    };
    worker.addEventListener("close", () => {
      if (generation === this.generation && !this.closed) this.died();
    });
    worker.addEventListener("error", (e) => {
      if (generation === this.generation && this.state === "loading") {
        // Goes to the server's log (the host's stderr is forwarded there).
        console.error(`function worker failed to start: ${(e as ErrorEvent).message}`);
      }
    });
    this.post({ t: "init", ...this.init, progress: this.progress.buffer });
    this.timer = setTimeout(this.loadTimedOut, this.loadTimeoutMs);
  }

  private post(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  /** Messages come from the worker user code runs in: a malformed one is ignored, never fatal. */
  private onMessage(m: FromWorker, generation: number): void {
    try {
      this.handleMessage(m, generation);
    } catch (err) {
      console.error(`function worker sent an unreadable message: ${(err as Error).message}`);
    }
  }

  private handleMessage(m: FromWorker, generation: number): void {
    if (typeof m === "string") {
      clearTimeout(this.timer);
      this.call = null;
      this.state = "idle";
      this.events.done(this, decodeDone(m));
    } else if (m.t === "req") {
      this.events.request(this, generation, m.id, m.req);
    } else if (m.t === "ready") {
      clearTimeout(this.timer);
      this.state = "idle";
      this.events.ready(this, m.functions);
    }
  }

  /** Checks the running function against its timeout; reschedules itself until then. */
  private watch = (): void => {
    const call = this.call;
    if (!call) return;
    const at = this.progress.read(call.id) ?? { index: 0, startedAt: call.sentAt };
    if (at.index < 0) {
      this.timer = setTimeout(this.watch, 1);
      return;
    }
    const step = call.steps[at.index] ?? call.steps[0]!;
    const left = at.startedAt + step.timeoutMs - Date.now();
    if (left > 0) {
      // A later step may start any moment: look again before its timeout could pass too.
      this.timer = setTimeout(this.watch, Math.min(left, step.nextMinMs));
      return;
    }
    this.call = null;
    this.replace();
    this.events.timedOut(this, call.id, step);
  };

  /** A module that does not finish loading (top-level loop or await) is skipped from now on. */
  private loadTimedOut = (): void => {
    const at = this.progress.read(LOAD_CALL_ID);
    const spec = at && at.index >= 0 ? this.init.functions[at.index] : undefined;
    if (spec) {
      this.init.skip[spec.id] = {
        name: "Error",
        message: `did not finish loading within ${this.loadTimeoutMs} ms`,
      };
    }
    this.replace();
  };

  /** The worker exited on its own (it crashed, or never started). */
  private died(): void {
    const call = this.call;
    const starting = this.state === "loading";
    this.call = null;
    clearTimeout(this.timer);
    // A worker that cannot even start would otherwise be restarted in a tight loop.
    if (starting) this.timer = setTimeout(() => this.start(), RESTART_DELAY_MS);
    else this.start();
    if (call) {
      this.events.failed(this, call.id, { name: "Error", message: "function worker exited" });
    }
  }

  private replace(): void {
    clearTimeout(this.timer);
    const old = this.worker;
    this.start();
    old.terminate();
  }
}
