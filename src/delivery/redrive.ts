import { type DeadLetter, type DeadLetterStore, originOf } from "./dead-letters/interface.ts";
import type { ConnectionPipeline, Produced } from "./pipeline.ts";

/** Which dead letters to send again. */
export type RedriveSelection = { all: true } | { ids: string[] };

/** What a redrive did. Letters that failed again are still there, with the new error. */
export interface RedriveReport {
  connectionId: string;
  /** Letters delivered (and removed). */
  delivered: number;
  /** Events they carried. */
  events: number;
  /** Letters tried that failed again. */
  failed: { id: string; error: string }[];
  /** Letters left untried because the destination is down (a passing failure). */
  skipped: number;
  /** Ids asked for that are not (or no longer) there. */
  missing: string[];
}

const PAGE = 100;

/**
 * Sends dead letters again, once each, through the connection's pipeline: a letter
 * the functions refused is run through them again, one the destination refused is
 * sent as it was (with the same Idempotency-Key, so a receiver that saw it drops it).
 * A delivered letter is removed; one that fails stays, with its new error. A passing
 * failure (the destination still down) ends the redrive: the rest are left as they are.
 */
export async function redriveDeadLetters(
  pipeline: ConnectionPipeline,
  store: DeadLetterStore,
  selection: RedriveSelection,
): Promise<RedriveReport> {
  const connectionId = pipeline.connectionId;
  const report: RedriveReport = {
    connectionId,
    delivered: 0,
    events: 0,
    failed: [],
    skipped: 0,
    missing: [],
  };
  let down = false;
  const tryOne = async (letter: DeadLetter) => {
    if (down) {
      report.skipped++;
      return;
    }
    const result = await redriveOne(pipeline, letter);
    if (result.ok) {
      await store.remove(connectionId, letter.id);
      report.delivered++;
      report.events += letter.events.length;
      return;
    }
    await store.failedAgain(connectionId, letter.id, result.failure);
    report.failed.push({ id: letter.id, error: result.failure.message });
    if (result.transient) down = true;
  };
  if ("ids" in selection) {
    for (const id of new Set(selection.ids)) {
      const letter = await store.get(connectionId, id);
      if (letter) await tryOne(letter);
      else report.missing.push(id);
    }
    return report;
  }
  let after = "";
  for (;;) {
    const page = await store.list(connectionId, { after, limit: PAGE });
    if (page.length === 0) break;
    for (const letter of page) await tryOne(letter);
    after = page.at(-1)!.id;
  }
  return report;
}

type LetterResult =
  | { ok: true }
  | { ok: false; transient: boolean; failure: { message: string; status?: number | string } };

async function redriveOne(pipeline: ConnectionPipeline, letter: DeadLetter): Promise<LetterResult> {
  let batch: Produced[];
  if (letter.stage === "functions") {
    batch = [];
    for (const event of letter.events) {
      const ran = await pipeline.runFunctionsOnce(event);
      if ("failure" in ran) return { ok: false, transient: ran.transient, failure: ran.failure };
      batch.push(...ran.produced);
    }
    if (batch.length === 0) return { ok: true }; // the functions now drop it
  } else {
    batch = letter.events.map((event, i) => ({
      event,
      origin: letter.origins[i] ?? originOf(event),
    }));
  }
  const events = batch.map((p) => p.event);
  const origins = batch.map((p) => p.origin);
  const outcome = await pipeline.attempt(events, origins, letter.attempts + 1, "redrive");
  if (outcome.ok) {
    // Events the destination refuses one by one become letters of their own.
    await pipeline.deadLetterRejected(batch, outcome.rejected ?? [], letter.attempts + 1);
    return { ok: true };
  }
  return { ok: false, transient: outcome.transient, failure: outcome.failure };
}
