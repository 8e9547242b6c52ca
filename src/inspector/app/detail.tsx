import { useEffect, useState } from "preact/hooks";
import { type Api, ApiError, type ConnectionPath, type EventDetail } from "./api.ts";
import { Badge } from "./badge.tsx";
import { clock } from "./format.ts";

/** One stored event: its JSON and its whole path (received, stored, each connection). */
export function DetailView({
  api,
  sourceId,
  messageId,
}: {
  api: Api;
  sourceId: string;
  messageId: string;
}) {
  const [detail, setDetail] = useState<EventDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  /** The server has no event view (501: the search index is off): why. */
  const [unavailable, setUnavailable] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    const load = () =>
      api
        .get<EventDetail>(
          `/admin/api/events/${encodeURIComponent(sourceId)}/${encodeURIComponent(messageId)}`,
        )
        .then((d) => live && setDetail(d))
        .catch((err) => {
          if (!live) return;
          if (err instanceof ApiError && err.status === 501) {
            // It will not come: no more asking.
            clearInterval(timer);
            setUnavailable(err.message);
          } else setError(err instanceof ApiError ? err.message : String(err));
        });
    void load();
    // The path grows while delivery goes on: look again every few seconds.
    const timer = setInterval(load, 3000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [api, sourceId, messageId]);

  if (unavailable) {
    return (
      <section>
        <h1>Event {messageId}</h1>
        <p class="empty" role="status">
          Stored events cannot be shown on this server: {unavailable}.{" "}
          <a href="#/live">Open the live view</a>
        </p>
      </section>
    );
  }
  if (error && !detail) {
    return (
      <section>
        <h1>Event {messageId}</h1>
        <p class="error" role="alert">
          {error}
        </p>
      </section>
    );
  }
  if (!detail) return <p class="empty">Loading…</p>;
  const { event, path } = detail;
  const title = typeof event.event === "string" ? event.event : event.type;
  return (
    <section aria-labelledby="detail-title" class="detail">
      <div class="view-head">
        <h1 id="detail-title">
          <span class="type">{event.type}</span> {title}
        </h1>
        <p class="muted">
          <code>{event.messageId}</code> · source {event.sourceId}
        </p>
      </div>
      <div class="detail-grid">
        <div>
          <h2>Path</h2>
          <ol class="timeline">
            <li>
              <span class="step">Received</span>
              <time dateTime={path.receivedAt}>{clock(path.receivedAt)}</time>
              <span class="muted">key {String(event.keyId ?? "?")}</span>
            </li>
            <li>
              <span class="step">Stored</span>
              {path.storedAt ? <time dateTime={path.storedAt}>{clock(path.storedAt)}</time> : null}
              <span class="muted">log position {path.position}</span>
            </li>
            {path.connections.length === 0 ? (
              <li>
                <span class="step">No connection</span>
                <span class="muted">no server-side connection reads source {event.sourceId}</span>
              </li>
            ) : (
              path.connections.map((c) => <ConnectionStep key={c.connectionId} c={c} />)
            )}
          </ol>
        </div>
        <div>
          <h2>
            Event JSON{" "}
            <button
              type="button"
              class="link"
              onClick={() => navigator.clipboard?.writeText(JSON.stringify(event, null, 2))}
            >
              Copy
            </button>
          </h2>
          <pre class="json">{JSON.stringify(event, null, 2)}</pre>
        </div>
      </div>
    </section>
  );
}

function ConnectionStep({ c }: { c: ConnectionPath }) {
  // Attempts, the dead letter and replays in the order they happened.
  const outcomes = [
    ...c.attempts.map((a, i) => ({
      key: `a${i}`,
      at: a.at,
      ok: a.ok,
      text: `Delivery attempt ${i + 1} at ${clock(a.at)}${a.via ? ` (${a.via})` : ""}: ${
        a.ok ? "ok" : "failed"
      }${a.status ? ` (${a.status})` : ""}${a.error ? ` · ${a.error}` : ""}`,
    })),
    ...(c.deadLetter
      ? [
          {
            key: "dead",
            at: c.deadLetter.at,
            ok: false,
            text: `Dead letter at ${clock(c.deadLetter.at)} after ${c.deadLetter.attempts} attempt(s): ${c.deadLetter.reason}`,
          },
        ]
      : []),
    ...c.replays.map((r, i) => ({
      key: `r${i}`,
      at: r.at,
      ok: r.status === "delivered",
      text: `Replayed at ${clock(r.at)}: ${r.status}`,
    })),
  ].sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0));
  return (
    <li class="connection-step" data-connection={c.connectionId}>
      <span class="step">
        {c.connectionId} <span class="muted">→ {c.destination.type}</span>
      </span>
      <Badge status={c.status} />
      {c.functions.length > 0 ? (
        <ul class="sub">
          {c.functions.map((run) => (
            <li key={run.at}>
              <span>
                Functions at {clock(run.at)}
                {run.retries > 0 ? ` (retry ${run.retries})` : ""}: {run.output} event(s) out
              </span>
              <ul class="sub">
                {run.execLog.map((x, i) => (
                  <li key={`x${i}`}>
                    <code>{x.functionId}</code> {x.ms.toFixed(1)} ms
                    {x.dropped ? " · dropped the event" : ""}
                    {x.error ? (
                      <span class="error-text">
                        {" "}
                        · {x.error.name}: {x.error.message}
                      </span>
                    ) : null}
                  </li>
                ))}
                {run.logs.map((l, i) => (
                  <li key={`l${i}`} class={`log log-${l.level}`}>
                    <span class="muted">{l.level}</span> <code>{l.functionId}</code> {l.message}
                    {l.args.length > 0 ? (
                      <span class="muted"> {JSON.stringify(l.args)}</span>
                    ) : null}
                  </li>
                ))}
              </ul>
            </li>
          ))}
        </ul>
      ) : null}
      {outcomes.length > 0 ? (
        <ul class="sub">
          {outcomes.map((o) => (
            <li key={o.key} class={o.ok ? "ok-text" : "error-text"}>
              {o.text}
            </li>
          ))}
        </ul>
      ) : null}
    </li>
  );
}
