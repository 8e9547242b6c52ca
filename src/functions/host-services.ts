import type { Logger } from "pino";
import type { FetchPolicy } from "./fetch-policy.ts";
import { FETCH_LIMITS, FetchRefused, performFetch } from "./fetch-proxy.ts";
import type { ErrorInfo, FetchRequest, ServiceReply, ServiceRequest } from "./protocol.ts";
import { type FunctionStore, runStoreRequest, storeOwner } from "./store.ts";

/**
 * What a function host asks of the server on behalf of one connection's functions:
 * ctx.store (the store lives in the server's state.db) and ctx.fetch (the host has
 * no network). Requests name the function; one outside the connection's chain is
 * refused, so a host cannot reach another connection's keys whatever it sends.
 */
/** Requests of one host being answered at once; more are refused with an error. */
const MAX_REQUESTS_IN_FLIGHT = 256;

export class HostServices {
  private inFlight = 0;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly opts: {
      connectionId: string;
      chain: readonly string[];
      store: FunctionStore;
      fetchPolicy: FetchPolicy;
      logger: Logger;
    },
  ) {}

  async answer(req: ServiceRequest): Promise<ServiceReply> {
    const { chain } = this.opts;
    if (typeof req?.fn !== "string" || !chain.includes(req.fn)) {
      return { error: { name: "Error", message: "request for a function not on this connection" } };
    }
    // A host runs user code: it may send requests in a loop, which must not swamp the server.
    if (this.inFlight >= MAX_REQUESTS_IN_FLIGHT) {
      return {
        error: {
          name: "Error",
          message: `too many ctx.store and ctx.fetch calls at once (at most ${MAX_REQUESTS_IN_FLIGHT})`,
        },
      };
    }
    this.inFlight++;
    try {
      return await this.carryOut(req);
    } finally {
      this.inFlight--;
    }
  }

  private async carryOut(req: ServiceRequest): Promise<ServiceReply> {
    const { connectionId, logger } = this.opts;
    if (req.kind === "store") {
      return runStoreRequest(this.opts.store, storeOwner(connectionId, req.fn), req, (err) =>
        logger.error({ err, op: req.op, functionId: req.fn }, "function store failed"),
      );
    }
    if (req.kind === "fetch") return this.fetch(req.fetch);
    return { error: { name: "Error", message: "unknown request" } };
  }

  /** At most FETCH_LIMITS.concurrent fetches at once for this host; the rest wait. */
  private async fetch(request: FetchRequest): Promise<ServiceReply> {
    if (this.running >= FETCH_LIMITS.concurrent)
      await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      return { response: await performFetch(this.opts.fetchPolicy, request) };
    } catch (err) {
      return { error: fetchError(err) };
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

function fetchError(err: unknown): ErrorInfo {
  if (err instanceof FetchRefused) return { name: err.name, message: err.message };
  if (err instanceof Error && err.name === "TimeoutError")
    return { name: "TimeoutError", message: err.message };
  return {
    name: "TypeError",
    message: `ctx.fetch failed: ${(err as Error)?.message ?? String(err)}`,
  };
}
