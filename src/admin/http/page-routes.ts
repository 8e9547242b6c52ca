import { Elysia } from "elysia";
import { SluiceError } from "../../errors.ts";
import type { HttpDeps } from "../../http/deps.ts";
import { ErrorBody, NoBody, TextBody } from "../../http/responses.ts";
import { pageAllowed } from "./guard.ts";
import { ADMIN_TAG } from "./schemas.ts";

/** The page's own headers: it loads nothing from elsewhere and is framed by no one. */
const PAGE_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** Loaded on the first request for the page: a server nobody inspects never bundles it. */
const assets = () => import("../../inspector/assets.ts");

const page = (summary: string, type: string) => ({
  response: { 200: TextBody(type, summary), 403: ErrorBody },
  detail: {
    tags: [ADMIN_TAG],
    summary,
    responses: {
      403: { description: "No admin token is configured and the request is not from loopback." },
    },
  },
});

/**
 * `GET /` (a redirect) and the inspector page at `/inspector/`, served from the
 * binary. The page itself holds no data: once an admin token exists it is served to
 * anyone, and asks for the token; with none, it answers on loopback only.
 */
export function pageRoutes(deps: HttpDeps) {
  const allow = (request: Request, server: Parameters<typeof pageAllowed>[1]) => {
    if (!pageAllowed(request, server, deps.config)) {
      throw new SluiceError(
        "forbidden",
        "the inspector answers only on loopback until an admin token is configured (sluice admin token create)",
      );
    }
  };
  const redirect = () => new Response(null, { status: 302, headers: { location: "/inspector/" } });
  return new Elysia({ name: "inspector-page" })
    .get("/", redirect, {
      response: { 302: NoBody("Redirects to `/inspector/`.") },
      detail: { tags: [ADMIN_TAG], summary: "Redirects to the inspector" },
    })
    .get(
      "/inspector/",
      async ({ request, server }) => {
        allow(request, server);
        const { inspectorHtml } = await assets();
        return new Response(inspectorHtml(), {
          headers: {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-cache",
            ...PAGE_HEADERS,
          },
        });
      },
      page("The event inspector page", "text/html"),
    )
    .get(
      "/inspector/app.js",
      async ({ request, server }) => {
        allow(request, server);
        const { INSPECTOR_ASSETS } = await assets();
        return new Response(INSPECTOR_ASSETS.js, {
          headers: {
            "content-type": "text/javascript; charset=utf-8",
            "cache-control": "public, max-age=31536000, immutable",
            ...PAGE_HEADERS,
          },
        });
      },
      page("The inspector's script", "text/javascript"),
    )
    .get(
      "/inspector/app.css",
      async ({ request, server }) => {
        allow(request, server);
        const { INSPECTOR_ASSETS } = await assets();
        return new Response(INSPECTOR_ASSETS.css, {
          headers: {
            "content-type": "text/css; charset=utf-8",
            "cache-control": "public, max-age=31536000, immutable",
            ...PAGE_HEADERS,
          },
        });
      },
      page("The inspector's stylesheet", "text/css"),
    );
}
