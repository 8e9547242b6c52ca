import { Elysia } from "elysia";
import { isJsonObject } from "../events/json.ts";
import { isIsoDate } from "../events/time.ts";
import type { IngestResult } from "../ingest/service.ts";
import type { HttpDeps } from "./deps.ts";
import { badRequest, HttpError } from "./errors.ts";
import { authenticate, chargeRate, clientIp } from "./request.ts";

/**
 * `POST /v1/batch` and `/batch`: many events with a shared context, integrations and
 * sentAt. Invalid events are skipped and listed; the rest are stored. If none is
 * valid, the answer is 400 with the same body.
 */
export function batchRoutes(deps: HttpDeps) {
  return new Elysia({ name: "batch" })
    .post(
      "/v1/batch",
      ({ request, server, set }) => acceptBatch(deps, request, server, set.headers),
      {
        parse: "none",
      },
    )
    .post("/batch", ({ request, server, set }) => acceptBatch(deps, request, server, set.headers), {
      parse: "none",
    });
}

/**
 * Accepts a batch (`{ batch: [...], context?, integrations?, sentAt? }`): invalid events
 * are skipped, logged and listed; 400 with the same body when none is valid.
 */
export async function acceptBatch(
  deps: HttpDeps,
  request: Request,
  server: Parameters<typeof clientIp>[1],
  headers: Record<string, string | number>,
) {
  const { key, body } = await authenticate(request, deps, headers);
  const batch = readBatch(body, deps.config.limits.maxBatchEvents);
  await chargeRate(deps, key, batch.items.length, headers);
  const result = await deps.ingest.ingest({
    key,
    items: batch.items,
    receivedAt: Date.now(),
    requestId: headers["x-request-id"] as string | undefined,
    requestIp: clientIp(request, server, deps.config.server.trustProxy),
    userAgent: request.headers.get("user-agent") ?? undefined,
    batch: { context: batch.context, integrations: batch.integrations, sentAt: batch.sentAt },
  });
  if (result.rejected.length > 0) {
    // SPEC 3: invalid events in a batch are skipped, logged and listed.
    deps.logger.info(
      {
        requestId: headers["x-request-id"],
        sourceId: key.source.id,
        keyId: key.keyId,
        rejected: result.rejected,
      },
      "batch events rejected",
    );
  }
  if (result.accepted + result.duplicates === 0) {
    throw new HttpError("bad_request", "every event in the batch is invalid", {
      ...batchBody(result, false),
    });
  }
  return batchBody(result, true);
}

export function batchBody(result: IngestResult, success: boolean) {
  return {
    success,
    ok: success,
    received: result.received,
    accepted: result.accepted,
    duplicates: result.duplicates,
    rejected: result.rejected,
  };
}

function readBatch(body: unknown, maxEvents: number) {
  if (!isJsonObject(body)) throw badRequest("body must be a JSON object with a batch array");
  const items = body.batch;
  if (!Array.isArray(items)) throw badRequest("batch must be an array of events");
  if (items.length === 0) throw badRequest("batch is empty");
  if (items.length > maxEvents) {
    throw badRequest(`batch has ${items.length} events; the limit is ${maxEvents}`);
  }
  const { context, integrations, sentAt } = body;
  if (context !== undefined && !isJsonObject(context))
    throw badRequest("context must be an object");
  if (integrations !== undefined && !isJsonObject(integrations)) {
    throw badRequest("integrations must be an object");
  }
  if (sentAt !== undefined && (typeof sentAt !== "string" || !isIsoDate(sentAt))) {
    throw badRequest("sentAt must be an ISO-8601 date in the years 1970–9999");
  }
  return { items, context, integrations, sentAt: sentAt as string | undefined };
}
