import { STATUS_LABEL } from "./format.ts";

/** A status as a coloured label (colour is never the only cue: the word is there too). */
export function Badge({ status }: { status: string }) {
  return <span class={`badge s-${status}`}>{STATUS_LABEL[status] ?? status}</span>;
}
