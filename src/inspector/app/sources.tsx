import { useEffect, useState } from "preact/hooks";
import type { Api, SourceView } from "./api.ts";
import { MinuteChart } from "./chart.tsx";

/** Sources, their key ids and types, and their events per minute over the last hour. */
export function SourcesView({ api }: { api: Api }) {
  const [sources, setSources] = useState<SourceView[] | null>(null);
  useEffect(() => {
    const load = () =>
      api.get<{ sources: SourceView[] }>("/admin/api/sources").then((r) => setSources(r.sources));
    void load();
    const timer = setInterval(load, 10_000);
    return () => clearInterval(timer);
  }, [api]);
  return (
    <section aria-labelledby="sources-title">
      <div class="view-head">
        <h1 id="sources-title">Sources</h1>
        <p class="muted">
          Events per minute over the last hour (since the server started, at most).
        </p>
      </div>
      {sources === null ? <p class="empty">Loading…</p> : null}
      <ul class="cards wide">
        {(sources ?? []).map((s) => (
          <li key={s.id} class="card" data-source={s.id}>
            <div class="card-head">
              <h2>{s.name}</h2>
              <span class="muted">{s.id}</span>
            </div>
            <MinuteChart minutes={s.minutes} label={s.name} />
            <dl class="facts">
              <dt>Write keys</dt>
              <dd>
                {s.keys.length === 0
                  ? "none"
                  : s.keys.map((k) => (
                      <span key={k.id} class="key">
                        <code>{k.id}</code> {k.type}
                      </span>
                    ))}
              </dd>
              <dt>Connections</dt>
              <dd>{s.connections.length === 0 ? "none" : s.connections.join(", ")}</dd>
            </dl>
          </li>
        ))}
      </ul>
    </section>
  );
}
