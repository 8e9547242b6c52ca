import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  type Api,
  type AttemptStatus,
  type LiveAttempt,
  type SourceView,
  STATUSES,
} from "./api.ts";
import { Badge } from "./badge.tsx";
import { clock, eventHref, STATUS_LABEL } from "./format.ts";

/** Rows the live view keeps (newest first); older ones fall off. */
const KEEP = 500;
const TYPES = ["track", "page", "identify", "group", "alias", "screen"];

type Rate = Partial<Record<AttemptStatus, number>>;

/**
 * Every ingest attempt as it happens: accepted, duplicate, rejected with the reason
 * and field, rate limited, unauthorized. Filters apply to what is shown; pausing
 * holds new attempts back (counted) until resumed.
 */
export function LiveView({ api, sources }: { api: Api; sources: SourceView[] }) {
  const [source, setSource] = useState("");
  const [rows, setRows] = useState<LiveAttempt[]>([]);
  const [held, setHeld] = useState<LiveAttempt[]>([]);
  const [paused, setPaused] = useState(false);
  const [rate, setRate] = useState<Rate>({});
  const [state, setState] = useState("connecting");
  const [statuses, setStatuses] = useState<Set<AttemptStatus>>(new Set(STATUSES));
  const [type, setType] = useState("");
  const [eventName, setEventName] = useState("");
  const [open, setOpen] = useState<number | null>(null);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;

  useEffect(() => {
    const abort = new AbortController();
    setRows([]);
    setHeld([]);
    void api.live({
      source,
      signal: abort.signal,
      onAttempt: (a) => {
        if (pausedRef.current) setHeld((h) => [a, ...h].slice(0, KEEP));
        else setRows((r) => [a, ...r].slice(0, KEEP));
      },
      onRate: setRate,
      onState: setState,
    });
    return () => abort.abort();
  }, [api, source]);

  const togglePause = () => {
    if (paused) {
      setRows((r) => [...held, ...r].slice(0, KEEP));
      setHeld([]);
    }
    setPaused(!paused);
  };

  const shown = useMemo(
    () =>
      rows.filter(
        (a) =>
          statuses.has(a.status) &&
          (type === "" || a.type === type) &&
          (eventName === "" || (a.event ?? "").toLowerCase().includes(eventName.toLowerCase())),
      ),
    [rows, statuses, type, eventName],
  );
  const total = Object.values(rate).reduce((n, v) => n + (v ?? 0), 0);

  return (
    <section aria-labelledby="live-title">
      <div class="view-head">
        <h1 id="live-title">Live events</h1>
        <p class="rate" aria-live="off">
          <strong data-testid="rate">{total}</strong> per second
          {total > 0 && (
            <span class="muted">
              {" "}
              (
              {STATUSES.filter((s) => rate[s])
                .map((s) => `${rate[s]} ${STATUS_LABEL[s]}`)
                .join(", ")}
              )
            </span>
          )}
          <span class={`conn conn-${state}`}>{state === "live" ? "connected" : state}</span>
        </p>
      </div>
      <fieldset class="toolbar">
        <legend class="sr-only">Live filters</legend>
        <label>
          Source
          <select value={source} onChange={(e) => setSource(e.currentTarget.value)}>
            <option value="">All sources</option>
            {sources.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type
          <select value={type} onChange={(e) => setType(e.currentTarget.value)}>
            <option value="">Any type</option>
            {TYPES.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Event name
          <input
            type="search"
            value={eventName}
            placeholder="e.g. Signed Up"
            onInput={(e) => setEventName(e.currentTarget.value)}
          />
        </label>
        <fieldset class="chips">
          <legend>Status</legend>
          {STATUSES.map((s) => (
            <label key={s} class={`chip s-${s}`}>
              <input
                type="checkbox"
                checked={statuses.has(s)}
                onChange={() => {
                  const next = new Set(statuses);
                  if (next.has(s)) next.delete(s);
                  else next.add(s);
                  setStatuses(next);
                }}
              />
              {STATUS_LABEL[s]}
            </label>
          ))}
        </fieldset>
        <div class="actions">
          <button type="button" class="primary" onClick={togglePause} aria-pressed={paused}>
            {paused ? `Resume${held.length ? ` (${held.length} new)` : ""}` : "Pause"}
          </button>
          <button type="button" onClick={() => setRows([])}>
            Clear
          </button>
        </div>
      </fieldset>
      {shown.length === 0 ? (
        <p class="empty">
          {rows.length === 0
            ? "Waiting for events… Send one to any ingest endpoint and it shows here within a second."
            : "No event matches these filters."}
        </p>
      ) : (
        <ol class="stream" aria-label="Ingest attempts, newest first">
          {shown.map((a) => (
            <LiveRow
              key={a.id}
              a={a}
              open={open === a.id}
              onToggle={() => setOpen(open === a.id ? null : a.id)}
            />
          ))}
        </ol>
      )}
    </section>
  );
}

function LiveRow({ a, open, onToggle }: { a: LiveAttempt; open: boolean; onToggle: () => void }) {
  const stored = a.status === "accepted" || a.status === "duplicate";
  const what = a.event ?? a.type ?? a.route ?? "request";
  const who = a.userId ?? a.anonymousId;
  return (
    <li class={`row s-${a.status}`} data-status={a.status} data-message-id={a.messageId ?? ""}>
      <div class="row-main">
        <time dateTime={a.at}>{clock(a.at)}</time>
        <Badge status={a.status} />
        <span class="what">
          {a.type && a.event ? <span class="type">{a.type}</span> : null}
          {stored && a.sourceId && a.messageId ? (
            <a href={eventHref(a.sourceId, a.messageId)}>{what}</a>
          ) : (
            <span>{what}</span>
          )}
          {a.messageId ? <span class="mid muted">{a.messageId}</span> : null}
        </span>
        <span class="who muted">{who ?? ""}</span>
        <span class="src muted">
          {a.sourceId ?? "unknown source"}
          {a.keyId ? ` · ${a.keyId}` : ""}
        </span>
        {a.reason ? (
          <span class="reason">
            {a.field ? <code>{a.field}</code> : null} {a.reason}
          </span>
        ) : null}
        {!stored && (a.payload || a.requestId) ? (
          <button type="button" class="link" aria-expanded={open} onClick={onToggle}>
            {open ? "Hide" : "Details"}
          </button>
        ) : null}
      </div>
      {open ? (
        <dl class="row-detail">
          {a.messageId ? (
            <>
              <dt>messageId</dt>
              <dd>
                <code>{a.messageId}</code>
              </dd>
            </>
          ) : null}
          {a.index !== undefined ? (
            <>
              <dt>Position in batch</dt>
              <dd>{a.index}</dd>
            </>
          ) : null}
          {a.requestId ? (
            <>
              <dt>Request id</dt>
              <dd>
                <code>{a.requestId}</code> (in the server's log lines)
              </dd>
            </>
          ) : null}
          {a.payload ? (
            <>
              <dt>As sent</dt>
              <dd>
                <pre>{pretty(a.payload)}</pre>
              </dd>
            </>
          ) : null}
        </dl>
      ) : null}
    </li>
  );
}

function pretty(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json;
  }
}
