/** The inspector's client of the admin API: the token in a header, never in a URL. */

export type AttemptStatus =
  | "accepted"
  | "duplicate"
  | "rejected"
  | "rate_limited"
  | "unauthorized"
  | "failed";

export const STATUSES: AttemptStatus[] = [
  "accepted",
  "duplicate",
  "rejected",
  "rate_limited",
  "unauthorized",
  "failed",
];

export interface LiveAttempt {
  id: number;
  at: string;
  status: AttemptStatus;
  sourceId: string | null;
  keyId: string | null;
  requestId?: string;
  route?: string;
  type?: string;
  event?: string;
  messageId?: string;
  userId?: string;
  anonymousId?: string;
  reason?: string;
  field?: string;
  index?: number;
  payload?: string;
}

export interface Access {
  via: "token" | "ticket" | "loopback";
  tokenId: string | null;
  version: string;
}

export interface MinuteCounts {
  minute: string;
  accepted: number;
  rejected: number;
  duplicate: number;
  rateLimited: number;
}

export interface SourceView {
  id: string;
  name: string;
  keys: { id: string; type: "browser" | "server" }[];
  connections: string[];
  minutes: MinuteCounts[];
}

export interface ConnectionView {
  id: string;
  source: string;
  destination: { type: string };
  state: "running" | "retrying" | "paused" | "failing";
  /** null: not known yet (the server is counting the backlog after start). */
  lag: { events: number | null; seconds: number | null };
  lastSuccessAt: string | null;
  lastError: { at: string; message: string } | null;
  attempts: number | null;
  deadLetters: number;
  actions: { pause: boolean; resume: boolean; redrive: boolean; replay: boolean };
}

export type StoredEvent = Record<string, unknown> & {
  messageId: string;
  sourceId: string;
  type: string;
  receivedAt: string;
};

export interface FunctionRun {
  at: string;
  retries: number;
  execLog: {
    eventIndex: number;
    functionId: string;
    ms: number;
    error?: { name: string; message: string };
    dropped?: true;
  }[];
  logs: {
    level: string;
    functionId: string;
    message: string;
    args: unknown[];
    timestamp: string;
  }[];
  output: number;
}

export interface ConnectionPath {
  connectionId: string;
  destination: { type: string };
  status: "delivered" | "pending" | "dead_letter" | "dropped" | "acked" | "before_start";
  functions: FunctionRun[];
  attempts: {
    at: string;
    ok: boolean;
    status?: number;
    error?: string;
    via?: "redrive" | "replay";
  }[];
  deadLetter: { at: string; reason: string; attempts: number } | null;
  replays: { at: string; status: string }[];
}

export interface EventDetail {
  event: StoredEvent;
  path: {
    receivedAt: string;
    storedAt: string | null;
    position: string;
    connections: ConnectionPath[];
  };
}

export interface SearchPage {
  events: StoredEvent[];
  next: string | null;
}

/** An answer other than 2xx: its status and the server's `error`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly parameter?: string,
  ) {
    super(message);
  }
}

export class Api {
  constructor(
    private readonly token: () => string | null,
    private readonly onUnauthorized: () => void,
  ) {}

  private headers(): Record<string, string> {
    const token = this.token();
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(path, {
      method,
      headers: {
        ...this.headers(),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.ok) return (await res.json()) as T;
    let message = `${res.status} ${res.statusText}`;
    let parameter: string | undefined;
    try {
      const b = (await res.json()) as { error?: string; parameter?: string };
      if (b.error) message = b.error;
      parameter = b.parameter;
    } catch {}
    if (res.status === 401) this.onUnauthorized();
    throw new ApiError(res.status, message, parameter);
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  /**
   * Reads the live stream with fetch (so the token travels in a header), calling
   * `onAttempt` and `onRate` per frame, reconnecting with Last-Event-ID until `signal`
   * aborts. `onState` reports the connection's state for the page to show.
   */
  async live(opts: {
    source: string;
    signal: AbortSignal;
    onAttempt: (a: LiveAttempt) => void;
    onRate: (counts: Partial<Record<AttemptStatus, number>>) => void;
    onState: (state: "connecting" | "live" | "retrying" | "dropped") => void;
  }): Promise<void> {
    let lastId: string | undefined;
    let delay = 500;
    while (!opts.signal.aborted) {
      opts.onState("connecting");
      try {
        const query = opts.source ? `?source=${encodeURIComponent(opts.source)}` : "";
        const res = await fetch(`/admin/api/live${query}`, {
          headers: { ...this.headers(), ...(lastId ? { "last-event-id": lastId } : {}) },
          signal: opts.signal,
        });
        if (res.status === 401) {
          this.onUnauthorized();
          return;
        }
        if (!res.ok || !res.body) throw new Error(`live stream: ${res.status}`);
        opts.onState("live");
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
            const frame = parseFrame(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (frame.id) lastId = frame.id;
            if (frame.event === "attempt") opts.onAttempt(JSON.parse(frame.data) as LiveAttempt);
            else if (frame.event === "rate") opts.onRate(JSON.parse(frame.data).counts);
            else if (frame.event === "dropped") opts.onState("dropped");
          }
        }
      } catch (err) {
        if (opts.signal.aborted) return;
        void err;
      }
      opts.onState("retrying");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  }
}

function parseFrame(block: string): { id?: string; event: string; data: string } {
  const frame: { id?: string; event: string; data: string } = { event: "message", data: "" };
  for (const line of block.split("\n")) {
    const colon = line.indexOf(":");
    if (colon === 0) continue; // a comment
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") frame.id = value;
    else if (field === "event") frame.event = value;
    else if (field === "data") frame.data += frame.data ? `\n${value}` : value;
  }
  return frame;
}
