import { afterAll, afterEach } from "bun:test";
import { type NatsLogOptions, NatsLogStream } from "../../src/log/nats/nats-log.ts";
import type { AppendRecord, StreamRecord } from "../../src/log/stream.ts";
import { findProgram, type NatsServerProcess, startNatsServer } from "../scaleout/servers.ts";

/** Why the NATS log tests cannot run here, or undefined. */
export const natsMissing = findProgram("nats-server")
  ? undefined
  : "nats-server is missing (apt-get install -y nats-server)";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Record `n` of `sourceId`, with messageId `m-<n>` and `{ n }` as its event. */
export const rec = (n: number, sourceId = "web"): AppendRecord => ({
  sourceId,
  type: "track",
  messageId: `m-${n}`,
  payload: encoder.encode(JSON.stringify({ n })),
});

/** The `n` of each record made by `rec`. */
export const numbers = (records: StreamRecord[]) =>
  records.map((r) => (JSON.parse(decoder.decode(r.payload)) as { n: number }).n);

/**
 * For a `describe` of NATS log tests: one nats-server for them all (started by the first
 * `start`), a stream of its own per `options()` call (`<PREFIX>_<n>`, subjects
 * `<prefix><n>.events.>`), and every log opened by `openLog` closed after its test.
 */
export function natsLogHarness(prefix: string) {
  let server: NatsServerProcess | undefined;
  let streams = 0;
  const open: NatsLogStream[] = [];
  afterEach(async () => {
    for (const log of open.splice(0)) await log.close().catch(() => undefined);
  });
  afterAll(async () => {
    await server?.cleanup();
  });
  return {
    start: async (): Promise<NatsServerProcess> => {
      server ??= await startNatsServer();
      return server;
    },
    options: (extra: Partial<NatsLogOptions> = {}): NatsLogOptions => {
      const n = streams++;
      return {
        servers: [server!.url],
        stream: `${prefix.toUpperCase()}_${n}`,
        subjectPrefix: `${prefix}${n}.events`,
        ...extra,
      };
    },
    openLog: async (opts: NatsLogOptions): Promise<NatsLogStream> => {
      const log = await NatsLogStream.open(opts);
      open.push(log);
      return log;
    },
  };
}
