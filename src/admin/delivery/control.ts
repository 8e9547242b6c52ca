import { type Static, Type as t } from "@sinclair/typebox";

const nullable = <T extends Parameters<typeof t.Union>[0][number]>(s: T) => t.Union([s, t.Null()]);

/** A connection's delivery state (SPEC 8): what the connections view and API show. */
export const ConnectionView = t.Object({
  id: t.String(),
  source: t.String(),
  destination: t.Object({ type: t.String() }),
  state: t.Union([
    t.Literal("running"),
    t.Literal("retrying"),
    t.Literal("paused"),
    t.Literal("failing"),
  ]),
  lag: t.Object({
    events: nullable(
      t.Integer({
        minimum: 0,
        description: "Events not yet delivered; null: not known yet (being counted after start).",
      }),
    ),
    seconds: nullable(
      t.Number({
        minimum: 0,
        description: "Age of the oldest event not yet delivered; null: not known yet.",
      }),
    ),
  }),
  lastSuccessAt: nullable(t.String()),
  lastError: nullable(t.Object({ at: t.String(), message: t.String() })),
  attempts: nullable(
    t.Integer({ minimum: 0, description: "Delivery attempts; null: not tracked." }),
  ),
  deadLetters: t.Integer({ minimum: 0 }),
  /** Which of pause/resume/redrive/replay this server can do. */
  actions: t.Object({
    pause: t.Boolean(),
    resume: t.Boolean(),
    redrive: t.Boolean(),
    replay: t.Boolean(),
  }),
});
export type ConnectionView = Static<typeof ConnectionView>;

/** One function run over one event on one connection. */
export const FunctionRunView = t.Object({
  at: t.String(),
  retries: t.Integer({ minimum: 0 }),
  execLog: t.Array(
    t.Object({
      eventIndex: t.Integer({ minimum: 0 }),
      functionId: t.String(),
      ms: t.Number({ minimum: 0 }),
      error: t.Optional(t.Object({ name: t.String(), message: t.String() })),
      dropped: t.Optional(t.Literal(true)),
    }),
  ),
  logs: t.Array(
    t.Object({
      level: t.String(),
      functionId: t.String(),
      message: t.String(),
      args: t.Array(t.Unknown()),
      timestamp: t.String(),
    }),
  ),
  /** Events the chain handed on (0: dropped). */
  output: t.Integer({ minimum: 0 }),
});
export type FunctionRunView = Static<typeof FunctionRunView>;

/** One try to hand a batch holding the event to the destination. */
export const DeliveryAttemptView = t.Object({
  at: t.String(),
  ok: t.Boolean(),
  status: t.Optional(t.Integer()),
  error: t.Optional(t.String()),
  via: t.Optional(
    t.Union([t.Literal("redrive"), t.Literal("replay")], {
      description:
        "Sent again from the dead letters (redrive) or by a replay; absent: live delivery.",
    }),
  ),
});

/** What became of one stored event on one connection. */
export const ConnectionPathView = t.Object({
  connectionId: t.String(),
  destination: t.Object({ type: t.String() }),
  status: t.Union(
    [
      t.Literal("delivered"),
      t.Literal("pending"),
      t.Literal("dead_letter"),
      t.Literal("dropped"),
      t.Literal("acked"),
      t.Literal("before_start"),
    ],
    {
      description:
        "delivered: the destination confirmed it; pending: not yet; dead_letter: refused for good; dropped: a function dropped it; acked (log.backend nats): the connection's consumer acknowledged it, but another instance handled it (delivered, dead-lettered or dropped there) and its attempts are in that instance's trace; before_start (log.backend nats): the connection started after the event was stored (created with start \"now\", or from a later position) and never received it",
    },
  ),
  functions: t.Array(FunctionRunView),
  attempts: t.Array(DeliveryAttemptView),
  deadLetter: nullable(
    t.Object({ at: t.String(), reason: t.String(), attempts: t.Integer({ minimum: 0 }) }),
  ),
  replays: t.Array(t.Object({ at: t.String(), status: t.String() })),
});
export type ConnectionPathView = Static<typeof ConnectionPathView>;

/** A stored event as delivery sees it: who sent it and where it sits in the log. */
export interface StoredEventRef {
  sourceId: string;
  messageId: string;
  /** The stored event's receivedAt (ms since the epoch): delivery's trace is keyed on it. */
  receivedAt: number;
  /** Where the log keeps it (the search index's ref: file position, or NATS stream sequence). */
  ref: string;
}

/** The answer of a control action. */
export type ControlOutcome =
  | { ok: true; detail?: Record<string, unknown> }
  | { ok: false; reason: "not_found" | "unavailable" | "invalid"; message?: string };

/**
 * What the inspector needs of delivery (SPEC 8, "observable and repairable"): each
 * connection's state, the actions on it, and each event's path through it. The admin
 * API and the page depend on this interface only; the delivery engine implements it.
 */
export interface DeliveryControl {
  connections(): ConnectionView[];
  pause(id: string): Promise<ControlOutcome>;
  resume(id: string): Promise<ControlOutcome>;
  /** Sends the connection's dead letters through its functions to its destination again. */
  redrive(id: string): Promise<ControlOutcome>;
  /** Re-sends stored events received in [from, to) without moving the connection's offset. */
  replay(id: string, range: { from: Date; to?: Date }): Promise<ControlOutcome>;
  /** The event's path on each server-side connection of its source (its store may be remote). */
  eventPath(event: StoredEventRef): Promise<ConnectionPathView[]>;
}
