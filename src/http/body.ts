import { gunzipSync, inflateSync } from "node:zlib";
import type { LimitsConfig } from "../config/schema.ts";
import { badRequest, SluiceError, tooLarge } from "../errors.ts";

const JSON_TYPES = new Set([
  "",
  "application/json",
  "text/plain", // navigator.sendBeacon
  "application/x-www-form-urlencoded", // RudderStack's Node client: gzipped JSON under this type
]);

/** Endpoints that take nothing but JSON (`/api/funcs`): any other Content-Type is a 400. */
export const STRICT_JSON_TYPES = new Set(["application/json"]);

export interface ReadBody {
  value: unknown;
  /** Size of the (decompressed) JSON text in bytes. */
  bytes: number;
}

/**
 * Reads and parses a JSON request body under SPEC 3's rules: accepted content types,
 * gzip with a capped decompression (a gzip bomb stops at the cap), 413 past
 * `maxBodyBytes` before and after decompression, 400 on malformed JSON.
 */
export async function readJsonBody(
  request: Request,
  limits: LimitsConfig,
  types: Set<string> = JSON_TYPES,
): Promise<ReadBody> {
  const contentType = request.headers.get("content-type") ?? "";
  const semicolon = contentType.indexOf(";");
  const mediaType = (semicolon < 0 ? contentType : contentType.slice(0, semicolon))
    .trim()
    .toLowerCase();
  if (!types.has(mediaType)) throw badRequest(`unsupported content type: ${mediaType}`);
  if (semicolon >= 0) checkCharset(contentType.slice(semicolon + 1));
  const max = limits.maxBodyBytes;
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > max) throw tooLarge(`body exceeds ${max} bytes`);
  const encoding = (request.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (Number.isInteger(declared) && (encoding === "identity" || encoding === "")) {
    return readPlainJson(request, declared);
  }

  let raw = await readCapped(request, max);
  if (encoding === "gzip" || encoding === "x-gzip") raw = decompress(raw, max, gunzipSync);
  else if (encoding === "deflate") raw = decompress(raw, max, inflateSync);
  else if (encoding !== "identity" && encoding !== "") {
    throw badRequest(`unsupported content encoding: ${encoding}`);
  }
  if (raw.byteLength === 0) throw badRequest("empty body");
  try {
    const text = raw.toString("utf8");
    // A byte order mark is ignored, as Request.json() does (RFC 8259 allows either).
    return {
      value: JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text),
      bytes: raw.byteLength,
    };
  } catch {
    throw badRequest("malformed JSON");
  }
}

/**
 * A body sent as it is, with its length: Bun's Request.json() reads and parses it
 * without the ArrayBuffer, Buffer and string the general path makes (a quarter less
 * CPU for a bare server's single event, bench/RESULTS.md, issue 11). Its size is the
 * declared one: the HTTP parser reads exactly that many bytes.
 */
async function readPlainJson(request: Request, declared: number): Promise<ReadBody> {
  if (declared === 0) throw badRequest("empty body");
  try {
    return { value: await request.json(), bytes: declared };
  } catch (err) {
    throw badRequest(err instanceof SyntaxError ? "malformed JSON" : "unreadable body");
  }
}

/** The WHATWG Encoding labels of UTF-8: the one charset a JSON body may declare (RFC 8259). */
const UTF8_LABELS = new Set([
  "utf-8",
  "utf8",
  "unicode-1-1-utf-8",
  "unicode11utf8",
  "unicode20utf8",
  "x-unicode20utf8",
]);

/**
 * 415 when the Content-Type parameters name a charset other than UTF-8: the body
 * is decoded as UTF-8, and a UTF-16 or Latin-1 body read that way would store garbage.
 */
function checkCharset(parameters: string): void {
  for (const parameter of parameters.split(";")) {
    const eq = parameter.indexOf("=");
    if (eq < 0 || parameter.slice(0, eq).trim().toLowerCase() !== "charset") continue;
    const charset = parameter
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .toLowerCase();
    if (!UTF8_LABELS.has(charset)) {
      throw new SluiceError(
        "unsupported_media_type",
        "unsupported charset: the body must be UTF-8",
      );
    }
  }
}

async function readCapped(request: Request, max: number): Promise<Buffer> {
  if (request.headers.has("content-length")) {
    const buf = Buffer.from(await readArrayBuffer(request));
    if (buf.byteLength > max) throw tooLarge(`body exceeds ${max} bytes`);
    return buf;
  }
  // Chunked body without a length: count as it streams in and stop at the cap.
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (request.body) {
    for await (const chunk of request.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > max) throw tooLarge(`body exceeds ${max} bytes`);
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks);
}

async function readArrayBuffer(request: Request): Promise<ArrayBuffer> {
  try {
    return await request.arrayBuffer();
  } catch {
    throw badRequest("unreadable body");
  }
}

function decompress(
  raw: Buffer,
  max: number,
  fn: (buf: Buffer, opts: { maxOutputLength: number }) => Buffer,
): Buffer {
  try {
    return fn(raw, { maxOutputLength: max });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw tooLarge(`decompressed body exceeds ${max} bytes`);
    }
    throw badRequest("body is not valid compressed data");
  }
}
