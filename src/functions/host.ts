/**
 * The function host: a child process of the server (`sluice __function-host`) that
 * keeps a pool of Bun Workers running user functions. It lives apart from the server
 * because Bun ignores Worker `resourceLimits`: a function allocating without bound
 * grows this process, which leaves (and is restarted by the server, see pool.ts)
 * instead of taking the server down. Its environment holds only PATH.
 */
import {
  type DoneRun,
  EXIT_MEMORY,
  type HostInit,
  type HostMessage,
  type LoadReport,
  type ParentMessage,
  type RunEnvelope,
  type StoreReply,
  type StoreRequest,
} from "./protocol.ts";
import { type StepLimit, stepLimits, WorkerSlot } from "./worker-slot.ts";

const MEMORY_CHECK_MS = 20;
const HEARTBEAT_MS = 1000;

/** Entry of `sluice __function-host`: waits for the server's init message over IPC. */
export function runFunctionHost(): void {
  if (!process.send) {
    console.error("__function-host is started by `sluice serve`, not by hand");
    process.exit(2);
  }
  let host: FunctionHost | null = null;
  process.on("message", (batch: ParentMessage[]) => {
    for (const m of batch) {
      if (m.t === "init") host ??= new FunctionHost(m);
      else host?.handle(m);
    }
  });
  // The server is gone (even kill -9): nothing to serve any more.
  process.on("disconnect", () => process.exit(0));
}

class FunctionHost {
  private readonly idle: WorkerSlot[] = [];
  private readonly queue: { call: RunEnvelope; deadline: number }[] = [];
  private steps: Map<string, StepLimit[]> | null = null;
  /** Store requests in flight: host id -> the worker that asked, and its own id. */
  private readonly storeCalls = new Map<
    number,
    { slot: WorkerSlot; generation: number; id: number }
  >();
  private storeSeq = 0;
  private outbox: HostMessage[] = [];

  constructor(private readonly init: HostInit) {
    const workerInit = {
      functions: init.functions,
      connections: init.connections,
      defaultTimeoutMs: init.defaultTimeoutMs,
      maxEvents: init.maxEvents,
      skip: {},
    };
    // Each slot reports `ready` once its worker has loaded the functions, and joins `idle`.
    for (let i = 0; i < Math.max(1, init.workers); i++) {
      new WorkerSlot(workerInit, init.loadTimeoutMs, this.slotEvents);
    }
    setInterval(() => this.send({ t: "alive" }), HEARTBEAT_MS);
    setInterval(() => {
      const rss = process.memoryUsage.rss();
      if (rss > init.maxMemoryBytes) {
        console.error(
          `function host: resident memory ${Math.round(rss / 1048576)} MB is over the limit of ` +
            `${Math.round(init.maxMemoryBytes / 1048576)} MB; exiting`,
        );
        process.exit(EXIT_MEMORY);
      }
    }, MEMORY_CHECK_MS);
  }

  handle(m: ParentMessage): void {
    if (m.t === "run") {
      this.queue.push({ call: m, deadline: Date.now() + m.limitMs });
      this.dispatch();
    } else if (m.t === "store") {
      this.storeReply(m);
    }
  }

  private readonly slotEvents = {
    ready: (slot: WorkerSlot, functions: LoadReport[]) => {
      if (!this.steps) {
        this.steps = chainLimits(this.init, functions);
        this.send({ t: "ready", functions });
      }
      this.idle.push(slot);
      this.dispatch();
    },
    done: (slot: WorkerSlot, done: DoneRun) => {
      this.send({ t: "done", ...done });
      this.idle.push(slot);
      this.dispatch();
    },
    timedOut: (_slot: WorkerSlot, id: number, step: StepLimit) => {
      this.send({ t: "timeout", id, functionId: step.id, timeoutMs: step.timeoutMs });
    },
    failed: (_slot: WorkerSlot, id: number, error: { name: string; message: string }) => {
      this.send({ t: "failed", id, error });
    },
    store: (slot: WorkerSlot, generation: number, r: StoreRequest) => {
      const id = ++this.storeSeq;
      this.storeCalls.set(id, { slot, generation, id: r.id });
      this.send({
        t: "store",
        id,
        con: r.con,
        fn: r.fn,
        op: r.op,
        key: r.key,
        value: r.value,
        ttl: r.ttl,
      });
    },
  };

  private dispatch(): void {
    if (!this.steps) return;
    while (this.queue.length > 0 && this.idle.length > 0) {
      const slot = this.idle.pop()!;
      // A slot whose worker was replaced since it went idle comes back on its own `ready`.
      if (slot.state !== "idle") continue;
      const { call, deadline } = this.queue.shift()!;
      if (Date.now() >= deadline) {
        // Waited past the pipeline's limit behind slower calls: not worth running now.
        this.idle.push(slot);
        this.send({ t: "timeout", id: call.id, timeoutMs: call.limitMs });
        continue;
      }
      slot.run(call, this.steps.get(call.con) ?? []);
    }
  }

  private storeReply(reply: StoreReply): void {
    const call = this.storeCalls.get(reply.id);
    if (!call) return;
    this.storeCalls.delete(reply.id);
    call.slot.storeReply(call.generation, { ...reply, id: call.id });
  }

  /** Messages go to the server in one IPC write per turn of the event loop. */
  private send(message: HostMessage): void {
    this.outbox.push(message);
    if (this.outbox.length === 1) queueMicrotask(this.flush);
  }

  private readonly flush = (): void => {
    const batch = this.outbox;
    this.outbox = [];
    process.send!(batch);
  };
}

/** Each connection's chain with every function's effective timeout. */
function chainLimits(init: HostInit, loaded: LoadReport[]): Map<string, StepLimit[]> {
  const timeouts = new Map(loaded.map((f) => [f.id, f.timeoutMs]));
  return new Map(
    init.connections.map((c) => [
      c.id,
      stepLimits(
        c.functions.map((id) => ({ id, timeoutMs: timeouts.get(id) ?? init.defaultTimeoutMs })),
      ),
    ]),
  );
}
