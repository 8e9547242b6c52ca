import { useEffect, useState } from "preact/hooks";
import { type Api, ApiError, type ConnectionView } from "./api.ts";
import { Badge } from "./badge.tsx";
import { ago, duration } from "./format.ts";

/** Each connection's delivery state, with pause/resume, redrive and replay. */
export function ConnectionsView({ api }: { api: Api }) {
  const [connections, setConnections] = useState<ConnectionView[] | null>(null);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [replayOf, setReplayOf] = useState<string | null>(null);

  const load = () =>
    api
      .get<{ connections: ConnectionView[] }>("/admin/api/connections")
      .then((r) => setConnections(r.connections))
      .catch((err) => setMessage({ text: String(err.message ?? err), error: true }));

  useEffect(() => {
    void load();
    const timer = setInterval(load, 5000);
    return () => clearInterval(timer);
  }, [api]);

  const act = async (id: string, action: string, body?: unknown) => {
    setMessage(null);
    try {
      await api.post(`/admin/api/connections/${encodeURIComponent(id)}/${action}`, body);
      setMessage({ text: `${action} ${id}: done`, error: false });
      setReplayOf(null);
      await load();
    } catch (err) {
      const text = err instanceof ApiError ? err.message : String(err);
      setMessage({ text: `${action} ${id}: ${text}`, error: true });
    }
  };

  return (
    <section aria-labelledby="connections-title">
      <div class="view-head">
        <h1 id="connections-title">Connections</h1>
        <p class="muted">Where each source's events go, and how far behind each destination is.</p>
      </div>
      {message ? (
        <p class={message.error ? "error" : "notice"} role="status">
          {message.text}
        </p>
      ) : null}
      {connections === null ? <p class="empty">Loading…</p> : null}
      {connections && connections.length === 0 ? (
        <p class="empty">
          No server-side connection is configured (see connections in sluice.yaml).
        </p>
      ) : null}
      <ul class="cards">
        {(connections ?? []).map((c) => (
          <li key={c.id} class="card" data-connection={c.id}>
            <div class="card-head">
              <h2>{c.id}</h2>
              <Badge status={c.state} />
            </div>
            <p class="muted">
              {c.source} → {c.destination.type}
            </p>
            <dl class="facts">
              <dt>Lag</dt>
              <dd>
                {c.lag.events === null
                  ? "counting…"
                  : `${c.lag.events} event${c.lag.events === 1 ? "" : "s"}`}
                {c.lag.events !== null && c.lag.events > 0 && c.lag.seconds !== null
                  ? `, oldest ${duration(c.lag.seconds)}`
                  : ""}
              </dd>
              <dt>Last success</dt>
              <dd>{c.lastSuccessAt ? ago(c.lastSuccessAt) : "—"}</dd>
              <dt>Last error</dt>
              <dd class={c.lastError ? "error-text" : ""}>
                {c.lastError ? `${ago(c.lastError.at)}: ${c.lastError.message}` : "none"}
              </dd>
              <dt>Attempts</dt>
              <dd>{c.attempts ?? "—"}</dd>
              <dt>Dead letters</dt>
              <dd>{c.deadLetters}</dd>
            </dl>
            <div class="actions">
              {c.state === "paused" ? (
                <button type="button" onClick={() => act(c.id, "resume")}>
                  Resume
                </button>
              ) : (
                <button type="button" onClick={() => act(c.id, "pause")}>
                  Pause
                </button>
              )}
              <button
                type="button"
                disabled={c.deadLetters === 0}
                onClick={() => act(c.id, "redrive")}
              >
                Redrive dead letters
              </button>
              <button
                type="button"
                aria-expanded={replayOf === c.id}
                onClick={() => setReplayOf(replayOf === c.id ? null : c.id)}
              >
                Replay…
              </button>
            </div>
            {!(c.actions.pause && c.actions.redrive && c.actions.replay) ? (
              <p class="muted small">
                Not available on this server yet:{" "}
                {[
                  !c.actions.pause && "pause and resume",
                  !c.actions.redrive && "redrive",
                  !c.actions.replay && "replay",
                ]
                  .filter(Boolean)
                  .join(", ")}
                .
              </p>
            ) : null}
            {replayOf === c.id ? (
              <ReplayForm onReplay={(range) => act(c.id, "replay", range)} />
            ) : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

function ReplayForm({ onReplay }: { onReplay: (range: { from: string; to?: string }) => void }) {
  const hourAgo = new Date(Date.now() - 3600_000 - new Date().getTimezoneOffset() * 60_000)
    .toISOString()
    .slice(0, 19);
  const [from, setFrom] = useState(hourAgo);
  const [to, setTo] = useState("");
  return (
    <form
      class="replay"
      onSubmit={(e) => {
        e.preventDefault();
        onReplay({
          from: new Date(from).toISOString(),
          ...(to ? { to: new Date(to).toISOString() } : {}),
        });
      }}
    >
      <label>
        Events received from
        <input
          type="datetime-local"
          step="1"
          required
          value={from}
          onInput={(e) => setFrom(e.currentTarget.value)}
        />
      </label>
      <label>
        until (empty: now)
        <input
          type="datetime-local"
          step="1"
          value={to}
          onInput={(e) => setTo(e.currentTarget.value)}
        />
      </label>
      <button type="submit" class="primary">
        Replay
      </button>
    </form>
  );
}
