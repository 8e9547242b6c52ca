import { afterEach } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type SqliteDedupOptions, SqliteDedupStore } from "../../src/dedup/sqlite.ts";

/**
 * For a dedup test file: temporary data dirs and stores opened on them (a window of
 * `windowSeconds` unless the options say otherwise), every store closed and then every
 * dir removed after each test.
 */
export function dedupStores(windowSeconds: number, prefix = "sluice-dedup-") {
  const dirs: string[] = [];
  const stores: SqliteDedupStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return {
    tempDir(): string {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    async open(dir: string, opts: Partial<SqliteDedupOptions> = {}) {
      const store = await SqliteDedupStore.open(dir, { windowSeconds, ...opts });
      stores.push(store);
      return store;
    },
    /** Closes a store the test opened (and no longer closes it after the test). */
    async close(store: SqliteDedupStore) {
      stores.splice(stores.indexOf(store), 1);
      await store.close();
    },
  };
}
