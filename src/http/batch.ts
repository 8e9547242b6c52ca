import { Type as t } from "@sinclair/typebox";
import type { DocumentDecoration } from "elysia";
import { badRequest, SluiceError } from "../errors.ts";
import { isJsonObject } from "../events/json.ts";
import { BatchBody } from "../events/schema.ts";
import { isIsoDate } from "../events/time.ts";
import type { IngestResult } from "../ingest/service.ts";
import type { HttpDeps } from "./deps.ts";
import type { SingleRequest } from "./ingest.ts";
import { requestIdOf } from "./observe.ts";
import { chargeRate, clientIp } from "./request.ts";
import { BatchResult, ErrorBody } from "./responses.ts";
import { errors, jsonBody, routeGroup } from "./route.ts";

/** The `writeKey` option of a batch route: charged by its count once parsed. */
export const BATCH = { cost: "batch", body: "json" } as const;

/** A batch route's answers (401 and 429 come with the write key). */
export const BATCH_RESPONSES = {
  200: BatchResult,
  ...errors(403, 413, 415, 503),
  400: t.Union([BatchResult, ErrorBody], {
    description:
      "Every event invalid (a BatchResult with `success: false`), or a malformed request.",
  }),
};

/** The OpenAPI `detail` of a batch route. */
export function batchDetail(operationId: string, summary = "Many events"): DocumentDecoration {
  return {
    tags: ["ingest"],
    operationId,
    summary,
    description:
      "Invalid events are skipped and listed in `rejected`; the rest are stored. The batch's `context` and `integrations` are merged under each event's own.",
    requestBody: jsonBody(BatchBody, "A batch of events."),
  };
}

/**
 * `POST /v1/batch` and `/batch`: many events with a shared context, integrations and
 * sentAt. Invalid events are skipped and listed; the rest are stored. If none is
 * valid, the answer is 400 with the same body.
 */
export function batchRoutes(deps: HttpDeps) {
  return routeGroup("batch", deps)
    .post("/v1/batch", batchHandler(deps), {
      writeKey: BATCH,
      parse: "none",
      response: BATCH_RESPONSES,
      detail: batchDetail("segmentBatch"),
    })
    .post("/batch", batchHandler(deps), {
      writeKey: BATCH,
      parse: "none",
      response: BATCH_RESPONSES,
      detail: batchDetail("batch"),
    });
}

/**
 * The handler of a batch route, its context taken apart in its parameter list (see
 * `singleEventHandler`: a context handed whole to a function costs every request).
 */
export function batchHandler(deps: HttpDeps) {
  return ({ key, body, bytes, request, server, set }: SingleRequest) =>
    acceptBatch(deps, { key, body, bytes, request, server, set });
}

/**
 * Accepts a batch (`{ batch: [...], context?, integrations?, sentAt? }`), its key and
 * body read by the `writeKey` macro: charges its count, stores the valid events; the
 * invalid ones are skipped, logged and listed; 400 with the same body when none is valid.
 */
export async function acceptBatch(deps: HttpDeps, c: SingleRequest) {
  const { key, body, request, server } = c;
  const headers = c.set.headers;
  const batch = readBatch(body, deps.config.limits.maxBatchEvents);
  await chargeRate(deps, key, batch.items.length, headers);
  const result = await deps.ingest.ingest({
    key,
    items: batch.items,
    receivedAt: Date.now(),
    requestId: requestIdOf(c.set),
    requestIp: clientIp(request, server, deps.config.server.trustProxy),
    userAgent: request.headers.get("user-agent") ?? undefined,
    batch: { context: batch.context, integrations: batch.integrations, sentAt: batch.sentAt },
  });
  if (result.rejected.length > 0) {
    // SPEC 3: invalid events in a batch are skipped, logged and listed.
    deps.logger.info(
      {
        requestId: requestIdOf(c.set),
        sourceId: key.source.id,
        keyId: key.keyId,
        rejected: result.rejected,
      },
      "batch events rejected",
    );
  }
  if (result.accepted + result.duplicates === 0) {
    throw new SluiceError("bad_request", "every event in the batch is invalid", {
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
