/**
 * A function ran past its timeout (its worker was terminated and replaced), or the
 * whole pipeline, queueing included, went past its limit (no `functionId`).
 */
export class FunctionTimeoutError extends Error {
  constructor(
    readonly functionId: string | undefined,
    readonly timeoutMs: number,
  ) {
    super(
      functionId === undefined
        ? `function pipeline timed out after ${timeoutMs} ms`
        : `function ${functionId} timed out after ${timeoutMs} ms`,
    );
    this.name = "FunctionTimeoutError";
  }
}

/** The function host failed a call (it exited, went over its memory limit, or is closed). */
export class FunctionHostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FunctionHostError";
  }
}
