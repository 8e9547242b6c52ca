// The browser build that `@jitsu/js` ships (its `p.js`, under a .txt name): imported
// as text, so `bun build --compile` embeds it in the binary.
import JITSU_P_JS from "@jitsu/js/dist/web/p.js.txt";
import { Elysia } from "elysia";
import { NoBody, TextBody } from "./responses.ts";

/** One hour: the URL carries no version, so a new sluice's p.js reaches browsers within it. */
const CACHE_CONTROL = "public, max-age=3600";

/** The script, its gzip form and a strong validator, made once. */
function prepare(text: string) {
  const plain = new TextEncoder().encode(text);
  const etag = `"${new Bun.CryptoHasher("sha256").update(plain).digest("hex").slice(0, 32)}"`;
  return { plain, gzip: Bun.gzipSync(plain), etag };
}

/**
 * `GET /p.js`: Jitsu's browser snippet, so `<script src="https://HOST/p.js"
 * data-write-key="…">` works against sluice alone (the script sends to the origin it
 * was loaded from). Served as JavaScript: a page loads it with a plain `<script>` tag,
 * and the browser blocks a script answered with JSON (ORB). Cacheable, with an ETag
 * (304 on a match) and gzip when the client takes it. No key: the page is public.
 */
export function jitsuScriptRoutes() {
  const script = prepare(JITSU_P_JS);
  return new Elysia({ name: "sdk-jitsu" }).get(
    "/p.js",
    ({ request, set }) => {
      Object.assign(set.headers, {
        "content-type": "application/javascript; charset=utf-8",
        "cache-control": CACHE_CONTROL,
        etag: script.etag,
        vary: "Accept-Encoding",
        "x-content-type-options": "nosniff",
      });
      const match = request.headers.get("if-none-match");
      if (match?.split(",").some((t) => t.trim().replace(/^W\//, "") === script.etag)) {
        return new Response(null, { status: 304 });
      }
      if (/\bgzip\b/.test(request.headers.get("accept-encoding") ?? "")) {
        set.headers["content-encoding"] = "gzip";
        return new Response(script.gzip);
      }
      return new Response(script.plain);
    },
    {
      response: {
        200: TextBody(
          "application/javascript",
          "The script (from the `@jitsu/js` package's own build).",
        ),
        304: NoBody("Not modified (`If-None-Match` matched)."),
      },
      detail: {
        tags: ["sdk"],
        operationId: "jitsuScript",
        summary: "Jitsu's browser snippet (p.js), served from the binary",
        description:
          'For `<script src="https://HOST/p.js" data-write-key="…">`. Cacheable (`Cache-Control`, `ETag`); gzip when accepted.',
        responses: {
          200: {
            description: "The script (from the `@jitsu/js` package's own build).",
            headers: {
              ETag: { schema: { type: "string" } },
              "Cache-Control": { schema: { type: "string" } },
            },
          },
        },
      },
    },
  );
}
