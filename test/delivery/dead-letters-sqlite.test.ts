import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteDeadLetterStore } from "../../src/delivery/dead-letters/sqlite.ts";
import { deadLetterContract } from "../contract/dead-letters.ts";

// The embedded backend: a table in the data dir's state database.
deadLetterContract("sqlite (state.db)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-contract-dl-"));
  let store = SqliteDeadLetterStore.open(dir);
  return {
    store,
    async reopen() {
      store.close();
      store = SqliteDeadLetterStore.open(dir);
      return store;
    },
    async cleanup() {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
