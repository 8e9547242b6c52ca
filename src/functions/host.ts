/**
 * The function host: a child process of the server that keeps a pool of Bun Workers
 * running one connection's functions. It lives apart from the server because Bun
 * ignores Worker `resourceLimits` (a function allocating without bound grows this
 * process, which leaves and is restarted by the server, see host-client.ts) and
 * because the operating system can confine a process: this one starts in the
 * sandbox of sandbox/ (its own user, Landlock, seccomp, no network, an empty
 * environment) and gets its connection only once it is inside.
 */
import { frame, readLines } from "./frames.ts";
import { Outbox } from "./outbox.ts";
import {
  type DoneRun,
  EXIT_MEMORY,
  type HostInit,
  type HostMessage,
  type LoadReport,
  type ParentMessage,
  type RunEnvelope,
  type SandboxReport,
  type ServiceRequest,
} from "./protocol.ts";
import { confineAndExec } from "./sandbox/confine.ts";
import { libc } from "./sandbox/libc.ts";
import type { SandboxPlan, StageOneReport } from "./sandbox/plan.ts";
import { installSeccomp } from "./sandbox/seccomp.ts";
import { type StepLimit, stepLimits, WorkerSlot } from "./worker-slot.ts";

const MEMORY_CHECK_MS = 20;
const HEARTBEAT_MS = 1000;
const PR_SET_DUMPABLE = 4;

/**
 * Entry of the host (`sluice __function-host`). With `confine <plan>` it is the first
 * stage: it confines itself and execs the second (sandbox/confine.ts). Otherwise it is
 * the host: it adds its seccomp filter, says hello with what its sandbox holds, and
 * waits for the server's init message over IPC.
 */
export function runFunctionHost(args: string[]): void {
  if (args[0] === "confine") confineAndExec(JSON.parse(args[1] ?? "{}") as SandboxPlan);
  const sandbox = finishSandbox(JSON.parse(args[0] ?? "{}") as StageOneReport | SandboxReport);
  let host: FunctionHost | null = null;
  const stdin = Bun.stdin.stream();
  void readLines(
    stdin,
    Number.MAX_SAFE_INTEGER,
    (batch) => {
      for (const m of batch as ParentMessage[]) {
        if (m.t === "init") host ??= new FunctionHost(m);
        else host?.handle(m);
      }
    },
    () => process.exit(2),
  ).then(
    // The server is gone (even kill -9): nothing to serve any more.
    () => process.exit(0),
  );
  send([{ t: "hello", sandbox }]);
}

/** One batch to the server, on stdout (frames.ts). */
function send(batch: HostMessage[]): void {
  process.stdout.write(frame(batch));
}

/** Adds what only this process can do for itself: the seccomp filter, non-dumpable. */
function finishSandbox(stageOne: StageOneReport | SandboxReport): SandboxReport {
  const report: SandboxReport = {
    user: stageOne.user,
    namespaces: stageOne.namespaces ?? false,
    landlockAbi: stageOne.landlockAbi ?? 0,
    seccomp: false,
    missing: [...(stageOne.missing ?? [])],
  };
  if ("seccomp" in stageOne) return report; // started without a sandbox at all
  const c = libc();
  if (!c) return { ...report, seccompError: "no libc" };
  c.prctl(PR_SET_DUMPABLE, 0);
  const problem = installSeccomp(c);
  if (problem) report.seccompError = problem;
  else report.seccomp = true;
  return report;
}

class FunctionHost {
  private readonly idle: WorkerSlot[] = [];
  private readonly queue: { call: RunEnvelope; deadline: number }[] = [];
  private steps: Map<string, StepLimit[]> | null = null;
  /** Requests in flight: host id -> the worker that asked, and its own id. */
  private readonly requests = new Map<
    number,
    { slot: WorkerSlot; generation: number; id: number }
  >();
  private requestSeq = 0;
  private readonly outbox = new Outbox<HostMessage>(send);

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
    setInterval(() => this.outbox.push({ t: "alive" }), HEARTBEAT_MS);
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
    } else if (m.t === "reply") {
      const call = this.requests.get(m.id);
      if (!call) return;
      this.requests.delete(m.id);
      call.slot.reply(call.generation, call.id, m.reply);
    }
  }

  private readonly slotEvents = {
    ready: (slot: WorkerSlot, functions: LoadReport[]) => {
      if (!this.steps) {
        this.steps = chainLimits(this.init, functions);
        this.outbox.push({ t: "ready", functions });
      }
      this.idle.push(slot);
      this.dispatch();
    },
    done: (slot: WorkerSlot, done: DoneRun) => {
      this.outbox.push({ t: "done", ...done });
      this.idle.push(slot);
      this.dispatch();
    },
    timedOut: (_slot: WorkerSlot, id: number, step: StepLimit) => {
      this.outbox.push({ t: "timeout", id, functionId: step.id, timeoutMs: step.timeoutMs });
    },
    failed: (_slot: WorkerSlot, id: number, error: { name: string; message: string }) => {
      this.outbox.push({ t: "failed", id, error });
    },
    request: (slot: WorkerSlot, generation: number, id: number, req: ServiceRequest) => {
      const hostId = ++this.requestSeq;
      this.requests.set(hostId, { slot, generation, id });
      this.outbox.push({ t: "req", id: hostId, req });
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
        this.outbox.push({ t: "timeout", id: call.id, timeoutMs: call.limitMs });
        continue;
      }
      slot.run(call, this.steps.get(call.con) ?? []);
    }
  }
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
