import { expect, test } from "bun:test";
import { headers, type MsgHdrs } from "@nats-io/transport-node";
import { TYPE_HEADER } from "../../src/log/nats/consumer.ts";
import { publishHeaders } from "../../src/log/nats/nats-log.ts";

/** The bytes `publish` sends for these headers (its MsgHdrsImpl has `encode`, the type does not). */
const bytes = (h: MsgHdrs) => (h as unknown as { encode(): Uint8Array }).encode();

/** What the client's own header map encodes for these values. */
function clientBytes(type: string, msgId?: string): Uint8Array {
  const h = headers();
  h.set(TYPE_HEADER, type);
  if (msgId !== undefined) h.set("Nats-Msg-Id", msgId);
  return bytes(h);
}

test("a record's headers are the bytes the client's own headers() would publish", () => {
  for (const [type, msgId] of [
    ["track", "web:m-1"],
    ["identify", "web:é 😀 a b\tc"],
    ["page", undefined],
    ["track", "web:"],
  ] as const) {
    expect(bytes(publishHeaders(type, msgId))).toEqual(clientBytes(type, msgId));
  }
});

test("values the client would trim or refuse take the client's own path: the same bytes, the same refusal", () => {
  for (const msgId of ["web: padded ", "web:tab\t", " web:x"]) {
    expect(bytes(publishHeaders("track", msgId))).toEqual(clientBytes("track", msgId));
  }
  for (const msgId of ["web:a\r\nX-Injected: 1", "web:line\n"]) {
    expect(() => publishHeaders("track", msgId)).toThrow();
  }
});
