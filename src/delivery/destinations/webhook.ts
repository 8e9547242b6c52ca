import type { StoredEvent } from "../../events/schema.ts";
import { idempotencyKey } from "../idempotency.ts";
import {
  type DeliveryAttempt,
  type DeliveryOutcome,
  type Destination,
  trimmed,
} from "../interface.ts";
import { retryAfterMs } from "../retry.ts";
import { signatureHeader } from "../signature.ts";

export interface WebhookOptions {
  url: string;
  headers?: Record<string, string>;
  /** Signs each request (`X-Sluice-Signature`); never logged. */
  secret?: string;
  timeoutMs?: number;
}

/**
 * POSTs each batch as a JSON array. 2xx confirms; network errors, 5xx, 408 and 429
 * are transient (retried, honouring Retry-After); any other status is permanent.
 */
export class WebhookDestination implements Destination {
  readonly type = "webhook";
  /** Aborted by close(): shutdown does not wait out a slow receiver. */
  private readonly closing = new AbortController();

  constructor(private readonly opts: WebhookOptions) {}

  async deliver(events: StoredEvent[], attempt: DeliveryAttempt): Promise<DeliveryOutcome> {
    const body = JSON.stringify(events);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      ...this.opts.headers,
      "idempotency-key": idempotencyKey(attempt.connectionId, events),
      "x-sluice-delivery": attempt.id,
    };
    if (this.opts.secret !== undefined) {
      headers["x-sluice-signature"] = signatureHeader(
        this.opts.secret,
        body,
        Math.floor(Date.now() / 1000),
      );
    }
    let res: Response;
    let answer: string;
    try {
      res = await fetch(this.opts.url, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.any([
          AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
          this.closing.signal,
        ]),
      });
      // Read whole (the connection is then reused); only its start is kept.
      answer = await res.text();
    } catch (err) {
      return {
        ok: false,
        transient: true,
        failure: { status: "network", message: `network error: ${(err as Error).message}` },
      };
    }
    if (res.ok) return { ok: true, status: res.status };
    const failure = {
      status: res.status,
      message: `HTTP ${res.status}`,
      ...(answer.trim() ? { answer: trimmed(answer) } : {}),
    };
    if (res.status >= 500 || res.status === 408 || res.status === 429) {
      return {
        ok: false,
        transient: true,
        failure,
        retryAfterMs: retryAfterMs(res.headers.get("retry-after")),
      };
    }
    return { ok: false, transient: false, failure };
  }

  async close(): Promise<void> {
    // An unconfirmed batch is simply delivered again after the restart (at-least-once).
    this.closing.abort();
  }
}
