import { EVENT_TYPES } from "../events/schema.ts";
import { ref, WRITE_KEY_SECURITY } from "./components.ts";
import { authErrors, batch, type Operation, ok, REQUEST_ID, segment } from "./operations.ts";

type Json = Record<string, unknown>;

/** `/v1/track` documented as its analytics.js 2.0 short path `/v1/t`. */
function shortPath(type: (typeof EVENT_TYPES)[number]): Operation {
  const long = segment(type);
  const doc = long.doc as Json;
  return {
    method: "POST",
    path: `/v1/${type[0]}`,
    doc: {
      ...doc,
      operationId: `${doc.operationId}Short`,
      summary: `One ${type} event, Segment analytics.js 2.0 short path`,
      description: `Same as \`/v1/${type}\`; analytics.js 2.0 posts here (\`text/plain\`, Basic auth, and a \`writeKey\` body field that is never stored).`,
    },
  };
}

function withDoc(op: Operation, extra: Json): Operation {
  return { ...op, doc: { ...op.doc, ...extra } };
}

/** The browser SDK routes of SPEC 3 (Segment short paths, RudderStack, Jitsu's p.js). */
export const SDK_OPERATIONS: Operation[] = [
  ...EVENT_TYPES.map(shortPath),
  withDoc(batch("/v1/b", "segmentBatchShort"), {
    summary: "Many events, Segment analytics.js 2.0 batching strategy",
  }),
  {
    method: "POST",
    path: "/v1/m",
    doc: {
      tags: ["sdk"],
      operationId: "segmentMetrics",
      summary: "analytics.js 2.0's own metrics: answered and ignored",
      description: "Nothing is read or stored; no write key is needed.",
      security: [],
      responses: { "200": ok("Ignored.", ref("OkResponse"), {}) },
    },
  },
  withDoc(batch("/beacon/v1/batch", "rudderstackBeacon"), {
    summary: "Many events, RudderStack's sendBeacon transport",
    description:
      'The key in the `writeKey` query parameter, a `text/plain` body, as `/v1/batch`. The browser never reads the answer: a refused beacon is logged as a warning and counted in `sluice_http_requests_total{route="/beacon/v1/batch"}` by status.',
  }),
  {
    method: "GET",
    path: "/sourceConfig",
    doc: {
      tags: ["sdk"],
      operationId: "rudderstackSourceConfig",
      summary: "RudderStack JS SDK v3 start-up config",
      description:
        "The SDK asks for `/sourceConfig/?p=…&v=…&writeKey=…` (trailing slash accepted) with Basic auth; its `configUrl` load option points here. Device-mode destinations are listed in RudderStack's shape.",
      security: WRITE_KEY_SECURITY,
      responses: { "200": ok("The source.", ref("RudderSourceConfig")), ...authErrors },
    },
  },
  {
    method: "GET",
    path: "/p.js",
    doc: {
      tags: ["sdk"],
      operationId: "jitsuScript",
      summary: "Jitsu's browser snippet (p.js), served from the binary",
      description:
        'For `<script src="https://HOST/p.js" data-write-key="…">`. Cacheable (`Cache-Control`, `ETag`); gzip when accepted.',
      security: [],
      responses: {
        "200": {
          description: "The script (from the `@jitsu/js` package's own build).",
          headers: {
            ...REQUEST_ID,
            ETag: { schema: { type: "string" } },
            "Cache-Control": { schema: { type: "string" } },
          },
          content: { "application/javascript": { schema: { type: "string" } } },
        },
        "304": { description: "Not modified (`If-None-Match` matched).", headers: REQUEST_ID },
      },
    },
  },
];
