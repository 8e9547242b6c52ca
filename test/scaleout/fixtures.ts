import { afterAll } from "bun:test";
import pino from "pino";
import { RedisConnection } from "../../src/state/redis.ts";
import {
  missingServers,
  type NatsServerProcess,
  type ServerProcess,
  startNatsServer,
  startRedisServer,
} from "./servers.ts";

/** Why the scale-out tests skip (nats-server or redis-server missing), else undefined. */
export const serversMissing = missingServers();
if (serversMissing) console.warn(`scale-out tests skip: ${serversMissing}`);

let prefixes = 0;
/** A key prefix no other test of this run uses, so tests share one Redis without meeting. */
export function freshPrefix(name: string): string {
  return `t${process.pid}-${name}-${prefixes++}-${Date.now().toString(36)}`;
}

/** Servers one test file shares: started on first use, stopped after the file. */
export interface FileServers {
  redis(): Promise<ServerProcess>;
  nats(): Promise<NatsServerProcess>;
  /** A connection to the file's Redis under a key prefix (a fresh one by default). */
  redisConnection(name: string, prefix?: string): Promise<RedisConnection>;
}

/**
 * Call once at the top of a test file. The servers are the file's own (bun test runs
 * every file in one process: a server kept in a module would outlive its file).
 */
export function fileServers(): FileServers {
  let redis: Promise<ServerProcess> | undefined;
  let nats: Promise<NatsServerProcess> | undefined;
  afterAll(async () => {
    await (await redis?.catch(() => undefined))?.cleanup();
    await (await nats?.catch(() => undefined))?.cleanup();
  });
  const servers: FileServers = {
    redis: () => {
      redis ??= startRedisServer();
      return redis;
    },
    nats: () => {
      nats ??= startNatsServer();
      return nats;
    },
    async redisConnection(name, prefix = freshPrefix(name)) {
      const server = await servers.redis();
      return RedisConnection.open(server.url, {
        logger: pino({ level: "silent" }),
        keyPrefix: prefix,
      });
    },
  };
  return servers;
}
