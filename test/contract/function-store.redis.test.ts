import { describe } from "bun:test";
import { RedisFunctionStore } from "../../src/functions/redis.ts";
import { fileServers, freshPrefix, serversMissing } from "../scaleout/fixtures.ts";
import { functionStoreContract } from "./function-store.ts";

const servers = fileServers();

describe.skipIf(Boolean(serversMissing))("redis", () => {
  functionStoreContract("redis (shared by every instance)", async (now) => {
    const prefix = freshPrefix("fs");
    let conn = await servers.redisConnection("fs", prefix);
    let store = new RedisFunctionStore(conn, { now });
    return {
      store,
      async reopen() {
        await conn.close();
        conn = await servers.redisConnection("fs", prefix);
        store = new RedisFunctionStore(conn, { now });
        return store;
      },
      async cleanup() {
        await conn.close();
      },
    };
  });
});
