import type { MinuteCounts } from "./api.ts";

const SERIES = [
  { key: "accepted", label: "accepted" },
  { key: "duplicate", label: "duplicate" },
  { key: "rejected", label: "rejected" },
  { key: "rateLimited", label: "rate limited" },
] as const;

/** Events per minute over the last hour, as stacked bars (SVG, no library). */
export function MinuteChart({ minutes, label }: { minutes: MinuteCounts[]; label: string }) {
  const totals = SERIES.map((s) => minutes.reduce((n, m) => n + m[s.key], 0));
  const max = Math.max(1, ...minutes.map((m) => SERIES.reduce((n, s) => n + m[s.key], 0)));
  const w = 600;
  const h = 120;
  const bar = w / Math.max(1, minutes.length);
  const summary = SERIES.map((s, i) => `${totals[i]} ${s.label}`).join(", ");
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${w} ${h}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`${label}: events per minute over the last hour. ${summary}.`}
      >
        <line x1="0" x2={w} y1={h - 0.5} y2={h - 0.5} class="axis" />
        {minutes.map((m, i) => {
          let y = h;
          return (
            <g key={m.minute}>
              <title>
                {`${new Date(m.minute).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })}: ${SERIES.map((s) => `${m[s.key]} ${s.label}`).join(", ")}`}
              </title>
              {SERIES.map((s) => {
                const v = m[s.key];
                if (v === 0) return null;
                const bh = Math.max(1, (v / max) * (h - 4));
                y -= bh;
                return (
                  <rect
                    key={s.key}
                    class={`bar b-${s.key}`}
                    x={i * bar + 0.5}
                    y={y}
                    width={Math.max(1, bar - 1)}
                    height={bh}
                  />
                );
              })}
            </g>
          );
        })}
      </svg>
      <figcaption>
        <span class="muted">60 min ago</span>
        <span class="legend">
          {SERIES.map((s, i) => (
            <span key={s.key}>
              <i class={`swatch b-${s.key}`} aria-hidden="true" /> {s.label} {totals[i]}
            </span>
          ))}
        </span>
        <span class="muted">now (peak {max}/min)</span>
      </figcaption>
    </figure>
  );
}
