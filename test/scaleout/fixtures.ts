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

/** Why this file's scale-out tests skip (nats-server or redis-server missing), else undefined. */
export const serversMissing = missingServers();
if (serversMissing) console.warn(`scale-out tests skip: ${serversMissing}`);

let redis: Promise<ServerProcess> | undefined;
let nats: Promise<NatsServerProcess> | undefined;

/** One redis-server for this test file, started on first use and stopped after the file. */
export function fileRedis(): Promise<ServerProcess> {
  redis ??= startRedisServer();
  return redis;
}

/** One nats-server -js for this test file, started on first use and stopped after the file. */
export function fileNats(): Promise<NatsServerProcess> {
  nats ??= startNatsServer();
  return nats;
}

afterAll(async () => {
  await (await redis?.catch(() => undefined))?.cleanup();
  await (await nats?.catch(() => undefined))?.cleanup();
});

let prefixes = 0;
/** A key prefix no other test of this run uses, so tests share one Redis without meeting. */
export function freshPrefix(name: string): string {
  return `t${process.pid}-${name}-${prefixes++}-${Date.now().toString(36)}`;
}

/** A connection to this file's Redis under a fresh key prefix. */
export async function redisConnection(name: string, prefix = freshPrefix(name)) {
  const server = await fileRedis();
  return RedisConnection.open(server.url, { logger: pino({ level: "silent" }), keyPrefix: prefix });
}
