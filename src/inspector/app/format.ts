/** Small display helpers shared by the views. */

/** `14:03:21.512` for today, `Mar 4 14:03:21` otherwise. */
export function clock(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const time = d.toLocaleTimeString(undefined, { hour12: false });
  const ms = String(d.getMilliseconds()).padStart(3, "0");
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? `${time}.${ms}`
    : `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${time}`;
}

/** `3 s`, `4 min`, `2 h` ago. */
export function ago(iso: string | null | undefined): string {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Seconds as `0.4 s`, `12 s`, `3 min`, `2.5 h`. */
export function duration(seconds: number): string {
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export const STATUS_LABEL: Record<string, string> = {
  accepted: "accepted",
  duplicate: "duplicate",
  rejected: "rejected",
  rate_limited: "rate limited",
  unauthorized: "unauthorized",
  failed: "failed",
  delivered: "delivered",
  pending: "pending",
  dead_letter: "dead letter",
  dropped: "dropped by a function",
  acked: "done by another instance",
  before_start: "before the connection started",
  running: "running",
  retrying: "retrying",
  paused: "paused",
  failing: "failing",
};

/** The hash route of an event's detail. */
export function eventHref(sourceId: string, messageId: string): string {
  return `#/event/${encodeURIComponent(sourceId)}/${encodeURIComponent(messageId)}`;
}
