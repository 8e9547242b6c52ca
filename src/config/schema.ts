import { type Static, Type as t } from "@sinclair/typebox";

// `hint` (on a pattern) is what a config error says the value must be (config/problems.ts).
const ID_HINT = "letters, digits, _ . - only";

/** Listener and data directory. */
export const ServerConfig = t.Object(
  {
    port: t.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    host: t.String({ default: "0.0.0.0" }),
    dataDir: t.String({ minLength: 1, default: "./data" }),
    trustProxy: t.Boolean({ default: false }),
    /**
     * The URL browsers reach this server at (behind a proxy or under a path), e.g.
     * `https://collect.example.com`: where the SDK settings send the SDKs' events.
     */
    publicUrl: t.Optional(t.String({ pattern: "^https?://[^/?#\\s]+(/[^?#\\s]*)?$" })),
  },
  { default: {}, additionalProperties: false },
);
export type ServerConfig = Static<typeof ServerConfig>;

/** Request size limits (SPEC 3). */
export const LimitsConfig = t.Object(
  {
    maxBodyBytes: t.Integer({ minimum: 1024, default: 1_048_576 }),
    maxBatchEvents: t.Integer({ minimum: 1, default: 500 }),
    maxEventBytes: t.Integer({ minimum: 256, default: 32_768 }),
  },
  { default: {}, additionalProperties: false },
);
export type LimitsConfig = Static<typeof LimitsConfig>;

export const DedupConfig = t.Object(
  { windowSeconds: t.Integer({ minimum: 1, default: 86_400 }) },
  { default: {}, additionalProperties: false },
);
export type DedupConfig = Static<typeof DedupConfig>;

/**
 * The event log (SPEC 5, 9): `file` (default) is the embedded log in the data dir,
 * `nats` a NATS JetStream stream shared by every instance that points at it. The
 * segment setting is the file log's; retention applies to either (segments deleted,
 * or the stream's messages removed); the rest are the stream's.
 */
export const EventLogConfig = t.Object(
  {
    backend: t.Union([t.Literal("file"), t.Literal("nats")], { default: "file" }),
    /** NATS servers (`nats://[user:password@]host:port`); read only with `backend: nats`. */
    servers: t.Array(t.String({ minLength: 1 }), {
      minItems: 1,
      default: ["nats://127.0.0.1:4222"],
    }),
    /** The JetStream stream (created if missing). */
    stream: t.String({
      minLength: 1,
      maxLength: 64,
      pattern: "^[A-Za-z0-9_-]+$",
      hint: "letters, digits, _ - only",
      default: "SLUICE",
    }),
    /** Subjects are `<subjectPrefix>.<sourceId>`. */
    subjectPrefix: t.String({
      minLength: 1,
      maxLength: 64,
      pattern: "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
      hint: "dot-separated tokens of letters, digits, _ -",
      default: "sluice.events",
    }),
    /** Copies of each message in the JetStream cluster (3 for R3); used when the stream is created. */
    replicas: t.Integer({ minimum: 1, maximum: 5, default: 1 }),
    /** The stream's `Nats-Msg-Id` window: it covers a crash between publish ack and dedup key write. */
    duplicateWindowSeconds: t.Integer({ minimum: 120, maximum: 86_400, default: 120 }),
    /** How long a delivering instance holds a batch before another one gets it (instance death). */
    ackWaitSeconds: t.Integer({ minimum: 5, maximum: 3600, default: 30 }),
    /**
     * How retention removes the stream's messages: `auto` purges when the server the
     * instance is connected to is 2.9.15 or later (else deletes one by one); `never`
     * always deletes one by one (a cluster whose stream leader may be older: a
     * rolling upgrade from before 2.9.15).
     */
    retentionPurge: t.Union([t.Literal("auto"), t.Literal("never")], { default: "auto" }),
    segmentBytes: t.Integer({
      minimum: 4096,
      maximum: 1024 * 1024 * 1024,
      default: 64 * 1024 * 1024,
    }),
    retention: t.Object(
      {
        /** Events older than this may be deleted once every connection consumed them (file: whole segments). */
        maxAgeHours: t.Number({ exclusiveMinimum: 0, default: 168 }),
        /** The oldest consumed events are deleted while the log is larger than this. */
        maxBytes: t.Integer({ minimum: 0, default: 10 * 1024 * 1024 * 1024 }),
        /** How often retention runs. */
        intervalSeconds: t.Number({ exclusiveMinimum: 0, default: 60 }),
      },
      { default: {}, additionalProperties: false },
    ),
  },
  { default: {}, additionalProperties: false },
);
export type EventLogConfig = Static<typeof EventLogConfig>;

/**
 * Where shared state lives (SPEC 9): `file` (default) keeps dedup keys, rate-limit
 * buckets, dead letters and the function store in the data dir; `redis` keeps them in
 * Redis, shared by every instance that points at it (the event log stays per instance).
 */
export const StateConfig = t.Object(
  {
    backend: t.Union([t.Literal("file"), t.Literal("redis")], { default: "file" }),
    /** `redis://[user:password@]host:port[/db]`; read only with `backend: redis`. */
    url: t.String({ minLength: 1, default: "redis://127.0.0.1:6379" }),
    /** Prefix of every Redis key (installs sharing one Redis use different ones). */
    keyPrefix: t.String({ minLength: 1, maxLength: 64, default: "sluice" }),
  },
  { default: {}, additionalProperties: false },
);
export type StateConfig = Static<typeof StateConfig>;

export const LoggerConfig = t.Object(
  {
    level: t.Union(
      ["trace", "debug", "info", "warn", "error", "fatal", "silent"].map((l) => t.Literal(l)),
      { default: "info" },
    ),
    /** Share of successful requests logged (one line each); every failed one is logged. */
    successSampleRate: t.Number({ minimum: 0, maximum: 1, default: 0.01 }),
  },
  { default: {}, additionalProperties: false },
);
export type LoggerConfig = Static<typeof LoggerConfig>;

export const WriteKeyConfig = t.Object(
  {
    id: t.String({ minLength: 1, pattern: "^[A-Za-z0-9_.-]+$", hint: ID_HINT }),
    type: t.Union([t.Literal("browser"), t.Literal("server")]),
    /** `sha256:<hex>` of the whole key string. */
    hash: t.Optional(
      t.String({ pattern: "^sha256:[0-9a-f]{64}$", hint: "sha256: and 64 hex digits" }),
    ),
    /** Plaintext key: accepted for local development only, with a warning. */
    key: t.Optional(t.String({ minLength: 8 })),
  },
  { additionalProperties: false },
);
export type WriteKeyConfig = Static<typeof WriteKeyConfig>;

export const RateLimitConfig = t.Object(
  {
    eventsPerSecond: t.Number({ exclusiveMinimum: 0, default: 1000 }),
    burst: t.Integer({ minimum: 1, default: 5000 }),
  },
  { default: {}, additionalProperties: false },
);
export type RateLimitConfig = Static<typeof RateLimitConfig>;

export const SourceConfig = t.Object(
  {
    id: t.String({ minLength: 1, pattern: "^[A-Za-z0-9_.-]+$", hint: ID_HINT }),
    name: t.Optional(t.String()),
    allowedOrigins: t.Optional(t.Array(t.String({ minLength: 1 }))),
    rateLimit: RateLimitConfig,
    writeKeys: t.Array(WriteKeyConfig, { default: [] }),
  },
  { additionalProperties: false },
);
export type SourceConfig = Static<typeof SourceConfig>;

/** Batching and retries of a server-side destination (defaults: src/delivery/retry.ts). */
const delivery = {
  batchSize: t.Optional(t.Integer({ minimum: 1, maximum: 10_000 })),
  maxWaitMs: t.Optional(t.Integer({ minimum: 0 })),
  /** At most this many attempts per batch (default: no limit, the retry window decides). */
  maxAttempts: t.Optional(t.Integer({ minimum: 1 })),
  /** First retry wait (default 1000); later ones double, with jitter. */
  retryBaseMs: t.Optional(t.Integer({ minimum: 1 })),
  /** Longest wait between retries (default 60000). */
  retryMaxDelayMs: t.Optional(t.Integer({ minimum: 1 })),
  /** How long a failing destination is retried before batches go to the dead letters (default 86400). */
  retryForSeconds: t.Optional(t.Number({ minimum: 0 })),
};

export const WebhookDestination = t.Object(
  {
    type: t.Literal("webhook"),
    url: t.String({ pattern: "^https?://", hint: "an http:// or https:// URL" }),
    headers: t.Optional(t.Record(t.String(), t.String())),
    /** Signs each request (`X-Sluice-Signature`, HMAC-SHA256); never logged. */
    secret: t.Optional(t.String({ minLength: 1 })),
    timeoutMs: t.Optional(t.Integer({ minimum: 1 })),
    ...delivery,
  },
  { additionalProperties: false },
);
export const PostgresDestination = t.Object(
  {
    type: t.Literal("postgres"),
    url: t.String({ pattern: "^postgres(ql)?://", hint: "a postgres:// URL" }),
    table: t.Optional(
      t.String({ pattern: "^[A-Za-z_][A-Za-z0-9_]*$", hint: "a table name (letters, digits, _)" }),
    ),
    ...delivery,
  },
  { additionalProperties: false },
);
export const FileDestination = t.Object(
  {
    type: t.Literal("file"),
    path: t.String({ minLength: 1 }),
    maxBytes: t.Optional(t.Integer({ minimum: 1024 })),
    ...delivery,
  },
  { additionalProperties: false },
);
export const DeviceDestination = t.Object(
  {
    type: t.Literal("device"),
    name: t.Optional(t.String()),
    options: t.Optional(t.Record(t.String(), t.Unknown())),
  },
  { additionalProperties: false },
);
export const DestinationConfig = t.Union([
  WebhookDestination,
  PostgresDestination,
  FileDestination,
  DeviceDestination,
]);
export type DestinationConfig = Static<typeof DestinationConfig>;

export const ConnectionConfig = t.Object(
  {
    id: t.String({ minLength: 1, pattern: "^[A-Za-z0-9_.-]+$", hint: ID_HINT }),
    source: t.String({ minLength: 1 }),
    destination: DestinationConfig,
    functions: t.Array(t.String(), { default: [] }),
    options: t.Record(t.String(), t.Unknown(), { default: {} }),
    env: t.Record(t.String(), t.String(), { default: {} }),
    start: t.Union([t.Literal("oldest"), t.Literal("now")], { default: "oldest" }),
  },
  { additionalProperties: false },
);
export type ConnectionConfig = Static<typeof ConnectionConfig>;

export const FunctionConfig = t.Object(
  {
    id: t.String({ minLength: 1, pattern: "^[A-Za-z0-9_.-]+$", hint: ID_HINT }),
    file: t.String({ minLength: 1 }),
    timeoutMs: t.Optional(t.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
export type FunctionConfig = Static<typeof FunctionConfig>;

/** The function runtime (SPEC 7): the worker pool and the limits user code runs under. */
export const FunctionRuntimeConfig = t.Object(
  {
    /** Workers running each connection's chain; default: the number of CPU cores. */
    workers: t.Optional(t.Integer({ minimum: 1, maximum: 256 })),
    /** A connection's function host is restarted when its resident memory passes this. */
    maxMemoryMb: t.Integer({ minimum: 64, default: 1024 }),
    /** Timeout of a function that sets none (in the config or its module's `config`). */
    timeoutMs: t.Integer({ minimum: 1, default: 5000 }),
    /**
     * Run function hosts as this user (a name or a numeric uid; the server must run as
     * root). Default when root: the dedicated user `sluice-fn` (created if missing).
     */
    user: t.Optional(t.String({ minLength: 1 })),
    /**
     * Networks ctx.fetch may reach although they are loopback, link-local or private
     * (CIDR blocks or single addresses, e.g. "10.0.0.0/8", "127.0.0.1", "::1").
     */
    allowNetworks: t.Array(t.String({ minLength: 1 }), { default: [] }),
  },
  { default: {}, additionalProperties: false },
);
export type FunctionRuntimeConfig = Static<typeof FunctionRuntimeConfig>;

/** One admin token of the event inspector: its id and `sha256:<hex>` of the whole token. */
export const AdminTokenConfig = t.Object(
  {
    id: t.String({ minLength: 1, pattern: "^[A-Za-z0-9_.-]+$" }),
    hash: t.String({ pattern: "^sha256:[0-9a-f]{64}$" }),
  },
  { additionalProperties: false },
);
export type AdminTokenConfig = Static<typeof AdminTokenConfig>;

/**
 * The inspector's admin API (SPEC 11): tokens made by `sluice admin token create`.
 * With none, the inspector and its API answer only on loopback.
 */
export const AdminConfig = t.Object(
  {
    tokens: t.Array(AdminTokenConfig, { default: [] }),
    /**
     * Keep the inspector's search index (`<dataDir>/index/`): events found by messageId,
     * userId, anonymousId or event name in milliseconds however large the log.
     */
    searchIndex: t.Boolean({ default: true }),
  },
  { default: {}, additionalProperties: false },
);
export type AdminConfig = Static<typeof AdminConfig>;

/** The whole `sluice.yaml`. */
export const SluiceConfig = t.Object(
  {
    server: ServerConfig,
    limits: LimitsConfig,
    dedup: DedupConfig,
    log: EventLogConfig,
    state: StateConfig,
    logger: LoggerConfig,
    sources: t.Array(SourceConfig, { default: [] }),
    connections: t.Array(ConnectionConfig, { default: [] }),
    functions: t.Array(FunctionConfig, { default: [] }),
    functionRuntime: FunctionRuntimeConfig,
    admin: AdminConfig,
  },
  { additionalProperties: false },
);
export type SluiceConfig = Static<typeof SluiceConfig>;
