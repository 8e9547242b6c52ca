import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { SqliteOffsetStore } from "../../src/delivery/offsets.ts";
import { FileEventLog } from "../../src/log/file/file-log.ts";
import { FileLogStream } from "../../src/log/file-stream.ts";
import { openStateDb } from "../../src/state/sqlite.ts";
import { eventLogContract } from "./event-log.ts";

eventLogContract("file (segments, offsets in the state database)", {
  async open() {
    const dir = mkdtempSync(join(tmpdir(), "sluice-contract-log-"));
    const start = async () => {
      // One segment per append call: retention deletes whole segments, so this is the
      // finest cut the contract's trimBefore test can ask for.
      const log = await FileEventLog.open({
        dir: join(dir, "log"),
        segmentBytes: 1,
        logger: pino({ level: "silent" }),
      });
      const db = openStateDb(dir);
      return { db, log: new FileLogStream(log, new SqliteOffsetStore(db)) };
    };
    let current = await start();
    const stop = async () => {
      await current.log.close();
      current.db.close();
    };
    return {
      log: current.log,
      async reopen() {
        await stop();
        current = await start();
        return current.log;
      },
      async cleanup() {
        await stop().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});
