import { useEffect, useState } from "preact/hooks";
import { type Api, ApiError, type SearchPage, type SourceView, type StoredEvent } from "./api.ts";
import { clock, eventHref } from "./format.ts";

const FIELDS = [
  { name: "messageId", label: "messageId" },
  { name: "userId", label: "userId" },
  { name: "anonymousId", label: "anonymousId" },
  { name: "event", label: "Event name" },
] as const;
const TYPES = ["track", "page", "identify", "group", "alias", "screen"];

type Query = Record<string, string>;

/** Search of the stored log by id or event name, newest first, a page at a time. */
export function SearchView({
  api,
  sources,
  initial,
}: {
  api: Api;
  sources: SourceView[];
  initial: Query;
}) {
  const [form, setForm] = useState<Query>(initial);
  const [results, setResults] = useState<StoredEvent[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<{ message: string; parameter?: string } | null>(null);
  /** The server has no search (501: the index is off): why. */
  const [unavailable, setUnavailable] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [ms, setMs] = useState<number | null>(null);

  const run = async (query: Query, cursor?: string) => {
    setBusy(true);
    setError(null);
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === "") continue;
      params.set(k, k === "from" || k === "to" ? new Date(v).toISOString() : v);
    }
    if (cursor) params.set("cursor", cursor);
    const started = performance.now();
    try {
      const page = await api.get<SearchPage>(`/admin/api/events?${params}`);
      setMs(performance.now() - started);
      setResults((r) => (cursor && r ? [...r, ...page.events] : page.events));
      setNext(page.next);
    } catch (err) {
      if (err instanceof ApiError && err.status === 501) {
        setUnavailable(err.message);
        setResults(null);
      } else if (err instanceof ApiError) {
        setError({ message: err.message, parameter: err.parameter });
      } else setError({ message: String(err) });
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    if (Object.values(initial).some((v) => v !== "")) void run(initial);
  }, []);

  const submit = (e: Event) => {
    e.preventDefault();
    const params = new URLSearchParams(Object.entries(form).filter(([, v]) => v !== ""));
    history.replaceState(null, "", `#/search?${params}`);
    void run(form);
  };
  const field = (name: string) => ({
    value: form[name] ?? "",
    onInput: (e: Event) =>
      setForm({ ...form, [name]: (e.currentTarget as HTMLInputElement).value }),
    "aria-invalid": error?.parameter === name ? true : undefined,
  });

  return (
    <section aria-labelledby="search-title">
      <div class="view-head">
        <h1 id="search-title">Search stored events</h1>
        {ms !== null && results ? (
          <p class="muted">
            {results.length} shown{next ? ", more available" : ""} · {Math.round(ms)} ms
          </p>
        ) : null}
      </div>
      <form class="search" onSubmit={submit}>
        {FIELDS.map((f) => (
          <label key={f.name}>
            {f.label}
            <input type="search" name={f.name} autoComplete="off" {...field(f.name)} />
          </label>
        ))}
        <label>
          Source
          <select
            value={form.source ?? ""}
            onChange={(e) => setForm({ ...form, source: e.currentTarget.value })}
          >
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
          <select
            value={form.type ?? ""}
            onChange={(e) => setForm({ ...form, type: e.currentTarget.value })}
          >
            <option value="">Any type</option>
            {TYPES.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Received from
          <input type="datetime-local" step="1" {...field("from")} />
        </label>
        <label>
          Received before
          <input type="datetime-local" step="1" {...field("to")} />
        </label>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy || unavailable !== null}>
            {busy ? "Searching…" : "Search"}
          </button>
        </div>
      </form>
      {unavailable ? (
        <p class="empty" role="status">
          Search is not available on this server: {unavailable}.{" "}
          <a href="#/live">Open the live view</a>
        </p>
      ) : null}
      {error ? (
        <p class="error" role="alert">
          {error.message}
        </p>
      ) : null}
      {results && results.length === 0 ? <p class="empty">No stored event matches.</p> : null}
      {results && results.length > 0 ? (
        <div class="table-wrap">
          <table class="results">
            <caption class="sr-only">Stored events, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Received</th>
                <th scope="col">Type</th>
                <th scope="col">Event</th>
                <th scope="col">User</th>
                <th scope="col">Source</th>
                <th scope="col">messageId</th>
              </tr>
            </thead>
            <tbody>
              {results.map((e) => (
                <tr key={`${e.sourceId}/${e.messageId}`} data-message-id={e.messageId}>
                  <td>
                    <time dateTime={e.receivedAt}>{clock(e.receivedAt)}</time>
                  </td>
                  <td>{e.type}</td>
                  <td>{typeof e.event === "string" ? e.event : "—"}</td>
                  <td class="muted">{String(e.userId ?? e.anonymousId ?? "")}</td>
                  <td>{e.sourceId}</td>
                  <td>
                    <a href={eventHref(e.sourceId, e.messageId)}>
                      <code>{e.messageId}</code>
                    </a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {next ? (
        <button type="button" disabled={busy} onClick={() => run(form, next)}>
          Load older
        </button>
      ) : null}
    </section>
  );
}
