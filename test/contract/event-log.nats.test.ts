import { describe } from "bun:test";
import { NatsLogStream } from "../../src/log/nats/nats-log.ts";
import { fileServers } from "../scaleout/fixtures.ts";
import { findProgram, natsServerVersion, natsSupportsSyncAlways } from "../scaleout/servers.ts";
import { eventLogContract } from "./event-log.ts";

const missing = findProgram("nats-server")
  ? undefined
  : "nats-server is missing: apt-get install -y nats-server (npm test's pretest does as root)";
if (missing) console.warn(`event log contract on NATS skipped: ${missing}`);

/** Which server the suite ran on, and whether its acks wait for fsync (`sync_interval: always`, 2.10+). */
function serverNote(): string {
  if (missing) return "not installed";
  const version = natsServerVersion();
  return natsSupportsSyncAlways(version)
    ? `nats-server ${version.join(".")}, sync_interval: always`
    : `nats-server ${version.join(".")}, no sync_interval (before 2.10): acks before fsync`;
}

describe.skipIf(Boolean(missing))("nats", () => {
  const servers = fileServers();
  let streams = 0;
  eventLogContract(`nats jetstream (file storage, durable pull consumers; ${serverNote()})`, {
    async open() {
      const server = await servers.nats();
      // A stream and subjects of its own per test: the tests share one server.
      const n = streams++;
      const options = {
        servers: [server.url],
        stream: `CONTRACT_${n}`,
        subjectPrefix: `contract${n}.events`,
      };
      let log = await NatsLogStream.open(options);
      return {
        log,
        async reopen() {
          await log.close();
          log = await NatsLogStream.open(options);
          return log;
        },
        async cleanup() {
          await log.close();
        },
      };
    },
  });
});
