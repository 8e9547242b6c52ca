import { describe } from "bun:test";
import { RedisDeadLetterStore } from "../../src/delivery/dead-letters/redis.ts";
import { fileServers, freshPrefix, serversMissing } from "../scaleout/fixtures.ts";
import { deadLetterContract } from "./dead-letters.ts";

const servers = fileServers();

describe.skipIf(Boolean(serversMissing))("redis", () => {
  deadLetterContract("redis (shared by every instance)", async () => {
    const prefix = freshPrefix("dl");
    let conn = await servers.redisConnection("dl", prefix);
    let store = new RedisDeadLetterStore(conn);
    return {
      store,
      async reopen() {
        await conn.close();
        conn = await servers.redisConnection("dl", prefix);
        store = new RedisDeadLetterStore(conn);
        return store;
      },
      async cleanup() {
        await conn.close();
      },
    };
  });
});
