import { expect } from "bun:test";
import type { DeadLetter } from "../../src/delivery/dead-letters/interface.ts";
import { SqliteDeadLetterStore } from "../../src/delivery/dead-letters/sqlite.ts";
import { type Truthy, waitFor } from "../support/wait.ts";

/** Polls `check` until it returns something truthy, or fails after `timeoutMs`. */
export async function until<T>(
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<Truthy<T>> {
  return waitFor(check, { timeoutMs, what });
}

/** A connection's dead letters, read from the data dir as `sluice deadletters list` does. */
export async function deadLettersOf(dataDir: string, connectionId: string): Promise<DeadLetter[]> {
  const store = SqliteDeadLetterStore.openReadOnly(dataDir);
  try {
    return await store.list(connectionId, { limit: 10_000 });
  } finally {
    store.close();
  }
}

/** Waits until a connection has `count` dead letters, and returns them. */
export function waitForDeadLetters(
  dataDir: string,
  connectionId: string,
  count: number,
  timeoutMs = 10_000,
): Promise<DeadLetter[]> {
  return until(
    async () => {
      const letters = await deadLettersOf(dataDir, connectionId);
      return letters.length >= count ? letters : null;
    },
    timeoutMs,
    `${count} dead letter(s) of ${connectionId}`,
  );
}

/** A connection's state from `/metrics` (the same state the admin API shows). */
export async function metricOf(url: string, name: string, connectionId: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name}\\{connection="${connectionId}"\\} (\\S+)$`, "m").exec(text);
  expect(m).not.toBeNull();
  return Number(m![1]);
}

/** Waits until the connection has confirmed everything in the log (lag 0). */
export function caughtUp(url: string, connectionId: string, timeoutMs = 10_000) {
  return until(
    async () => (await metricOf(url, "sluice_connection_lag_events", connectionId)) === 0,
    timeoutMs,
    `${connectionId} to catch up`,
  );
}

/** The JSON log lines of a test server's log file. */
export async function logLines(file: string): Promise<Record<string, unknown>[]> {
  const text = await Bun.file(file).text();
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
