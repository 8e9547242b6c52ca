import type { StoredEvent } from "../../events/schema.ts";
import { retryAfterMs } from "../backoff.ts";
import type { DeliveryOutcome, Destination } from "../interface.ts";

export interface WebhookOptions {
  url: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** POSTs each batch as a JSON array. 2xx confirms; 5xx, 429 and network errors retry. */
export class WebhookDestination implements Destination {
  readonly type = "webhook";
  /** Aborted by close(): shutdown does not wait out a slow receiver. */
  private readonly closing = new AbortController();

  constructor(private readonly opts: WebhookOptions) {}

  async deliver(events: StoredEvent[]): Promise<DeliveryOutcome> {
    let res: Response;
    try {
      res = await fetch(this.opts.url, {
        method: "POST",
        headers: { "content-type": "application/json", ...this.opts.headers },
        body: JSON.stringify(events),
        signal: AbortSignal.any([
          AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
          this.closing.signal,
        ]),
      });
      await res.arrayBuffer(); // drain, so the connection can be reused
    } catch (err) {
      return { ok: false, retry: true, reason: `network error: ${(err as Error).message}` };
    }
    if (res.ok) return { ok: true };
    const reason = `HTTP ${res.status}`;
    if (res.status === 429 || res.status >= 500 || res.status === 408) {
      return {
        ok: false,
        retry: true,
        reason,
        retryAfterMs: retryAfterMs(res.headers.get("retry-after")),
      };
    }
    return { ok: false, retry: false, reason };
  }

  async close(): Promise<void> {
    // An unconfirmed batch is simply delivered again after the restart (at-least-once).
    this.closing.abort();
  }
}
