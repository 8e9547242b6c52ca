import type { ChainResult } from "./protocol.ts";

/** One chain run as the server asks for it. */
export interface ChainCall {
  connectionId: string;
  event: Record<string, unknown>;
  /** Request headers, credentials already removed. */
  headers: Record<string, string>;
  sourceType: "browser" | "s2s";
  receivedAt: number;
  retries: number;
}

/** What the server's routes and delivery need of the function runtime. */
export interface FunctionRunner {
  /** Runs a connection's chain; resolves with the JSON text of its ChainResult. */
  runJson(call: ChainCall): Promise<string>;
  run(call: ChainCall): Promise<ChainResult>;
}
