import { expect, test } from "bun:test";
import type { ConnectionConfig } from "../../src/config/schema.ts";
import type { DeadLetterStore } from "../../src/delivery/dead-letters/interface.ts";
import { DeliveryManager } from "../../src/delivery/manager.ts";
import type { PauseStore } from "../../src/delivery/paused.ts";
import type { DeliveryTrace } from "../../src/delivery/trace/interface.ts";
import type {
  LogConsumer,
  LogRetentionPolicy,
  LogStream,
  RetentionResult,
} from "../../src/log/stream.ts";
import { memoryLogger } from "../support/logger.ts";
import { tempDirs } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

const tempDir = tempDirs();

/**
 * A log whose consumers read nothing and whose close waits for `release` (a consumer
 * slow to stop), and whose retain records the policies it is given.
 */
function fakeLog() {
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const closing = new Set<string>();
  const policies: LogRetentionPolicy[] = [];
  let retainResult: () => Promise<RetentionResult> = async () => ({ records: 0, holding: [] });
  const log = {
    healthy: () => true,
    consumer: async (name: string): Promise<LogConsumer> =>
      ({
        read: async (_max: number, waitMs = 0) => {
          await Bun.sleep(Math.min(waitMs, 5));
          return [];
        },
        commit: async () => {},
        close: async () => {
          closing.add(name);
          await released;
        },
      }) as unknown as LogConsumer,
    backlog: async () => ({ records: 0 }),
    retain: (policy: LogRetentionPolicy) => {
      policies.push(policy);
      return retainResult();
    },
    close: async () => {},
  } as unknown as LogStream;
  return {
    log,
    policies,
    closing,
    release,
    failRetain: (f: () => Promise<RetentionResult>) => {
      retainResult = f;
    },
  };
}

function manager(log: LogStream, connections: ConnectionConfig[]) {
  const { logger } = memoryLogger();
  return new DeliveryManager({
    connections,
    log,
    dataDir: tempDir("manager-retention"),
    retention: { maxAgeHours: 1, maxBytes: 1, intervalSeconds: 3600 },
    chain: (async () => []) as never,
    logger,
    deadLetters: { counts: async () => new Map() } as unknown as DeadLetterStore,
    trace: { record: () => {}, close: () => {} } as unknown as DeliveryTrace,
    paused: { paused: async () => new Set(), set: async () => {} } as PauseStore,
    retentionIntervalMs: 3_600_000,
    backlogIntervalMs: 3_600_000,
    countIntervalMs: 3_600_000,
  });
}

const hook = (batchSize: number) =>
  ({
    id: "con_hook",
    source: "web",
    destination: { type: "webhook", url: "http://127.0.0.1:9/", batchSize, maxWaitMs: 10 },
  }) as unknown as ConnectionConfig;

test("a connection being restarted by a reload still holds retention until its consumer has stopped", async () => {
  const f = fakeLog();
  const m = manager(f.log, [hook(10)]);
  await m.start();
  try {
    // A reload that changes it: stopped (its consumer slow to close), then started again.
    const reloaded = m.applyConnections([hook(20)]);
    await waitFor(() => f.closing.has("con_hook"), { what: "the consumer closing" });
    expect(m.ids()).toEqual([]);
    await m.retain();
    expect(f.policies.at(-1)!.consumers).toEqual(["con_hook"]);
    f.release();
    await reloaded;
    expect(m.ids()).toEqual(["con_hook"]);
  } finally {
    f.release();
    await m.stop();
  }
});

test("a failed retention pass keeps what the last one found held (retention_held does not drop to 0)", async () => {
  const f = fakeLog();
  const m = manager(f.log, [hook(10)]);
  await m.start();
  try {
    f.failRetain(async () => ({ records: 0, holding: ["con_hook"] }));
    await m.retain();
    expect(m.connectionStates()[0]!.retentionHeld).toBe(true);
    f.failRetain(async () => {
      throw new Error("consumer info failed");
    });
    expect(await m.retain()).toBeUndefined();
    expect(m.connectionStates()[0]!.retentionHeld).toBe(true);
    f.failRetain(async () => ({ records: 3, holding: [] }));
    await m.retain();
    expect(m.connectionStates()[0]!.retentionHeld).toBe(false);
  } finally {
    f.release();
    await m.stop();
  }
});

test("stop waits for a retention pass in flight (the log is closed after it)", async () => {
  const f = fakeLog();
  const m = manager(f.log, [hook(10)]);
  await m.start();
  let finish = () => {};
  f.failRetain(
    () =>
      new Promise((resolve) => {
        finish = () => resolve({ records: 1, holding: [] });
      }),
  );
  const pass = m.retain();
  await waitFor(() => f.policies.length === 1, { what: "the pass to start" });
  let stopped = false;
  f.release();
  const stopping = m.stop().then(() => {
    stopped = true;
  });
  // Not stopped a while later (a check that something does not happen: nothing to wait on).
  await Bun.sleep(50);
  expect(stopped).toBe(false);
  finish();
  await stopping;
  expect(stopped).toBe(true);
  expect(await pass).toEqual({ records: 1, holding: [] });
});
