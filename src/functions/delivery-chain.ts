import type { SourceConfig } from "../config/schema.ts";
import type { ChainRunner } from "../delivery/chain.ts";
import type { StoredEvent } from "../events/schema.ts";
import { FunctionTimeoutError } from "./errors.ts";
import type { FunctionRunner } from "./pool.ts";

/**
 * The delivery side of functions (SPEC 8): runs a connection's chain over a stored
 * event. A function that throws `RetryError` asks for the event to be tried again
 * later; a chain the runtime could not run (timeout, host restart) is reported as
 * such, since the event must not be delivered unprocessed nor be lost.
 */
export function deliveryChain(
  runner: FunctionRunner | undefined,
  sources: () => SourceConfig[],
): ChainRunner {
  let known: SourceConfig[] | undefined;
  let browserKeys = new Set<string>();
  const isBrowserKey = (keyId: string) => {
    const current = sources();
    if (current !== known) {
      known = current;
      browserKeys = new Set(
        current.flatMap((s) => s.writeKeys.filter((k) => k.type === "browser").map((k) => k.id)),
      );
    }
    return browserKeys.has(keyId);
  };
  return async (connection, event, retries) => {
    if (!runner || connection.functions.length === 0) {
      return { events: [event], execLog: [], logs: [] };
    }
    try {
      const result = await runner.run({
        connectionId: connection.id,
        event,
        headers: {},
        sourceType: isBrowserKey(event.keyId) ? "browser" : "s2s",
        receivedAt: Date.parse(event.receivedAt) || Date.now(),
        retries,
      });
      const { execLog, logs } = result;
      const retry = execLog.find((e) => e.error?.name === "RetryError");
      if (retry) return { retry: retry.error!.message, execLog, logs };
      return { events: result.events as StoredEvent[], execLog, logs };
    } catch (err) {
      const userCode = err instanceof FunctionTimeoutError && err.functionId !== undefined;
      return { failed: `functions could not run: ${(err as Error).message}`, userCode };
    }
  };
}
