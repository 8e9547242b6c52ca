import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Page,
  type Request,
} from "playwright-core";
import { storedEvents, type TestServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

export { readmeBlock, substitute } from "../support/readme.ts";

// What the browser SDK tests share: Debian's Chromium driven by playwright-core, the
// SDKs bundled from their npm packages with Bun.build, a page server on another
// origin (so every request to sluice is cross-origin, preflights included), and a
// reader of the events sluice stored.

const ROOT = join(import.meta.dir, "..", "..");
export const CHROMIUM = process.env.SLUICE_CHROMIUM ?? "/usr/bin/chromium";

/** Why the browser tests cannot run here (the same words scripts/pretest.sh prints), or undefined. */
export const chromiumMissing = existsSync(CHROMIUM)
  ? undefined
  : `chromium not found at ${CHROMIUM}: install it (Debian/Ubuntu: apt-get install -y chromium; npm test does so as root); the browser SDK tests skip`;
if (chromiumMissing) console.warn(`SKIP ${chromiumMissing}`);

/** Launches headless Chromium with no network service of its own (no downloads, no sync). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Bundles `source` (an ES module that imports the SDK packages by name) for the
 * browser, as a site's own build would. The entry is written under node_modules/.cache
 * so the packages resolve from this project's node_modules.
 */
export async function bundle(source: string): Promise<string> {
  const cache = join(ROOT, "node_modules", ".cache");
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, "sluice-sdk-"));
  try {
    const entry = join(dir, "entry.js");
    writeFileSync(entry, source);
    const built = await Bun.build({
      entrypoints: [entry],
      target: "browser",
      format: "iife",
      minify: false,
    });
    if (!built.success) throw new Error(built.logs.map(String).join("\n"));
    return await built.outputs[0]!.text();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface PageServer {
  origin: string;
  /** Sets what a path serves (HTML or JavaScript, by its extension). */
  set(path: string, body: string): void;
  stop(): void;
}

/** A second origin for the test pages: a plain static server on another port. */
export function startPageServer(): PageServer {
  const files = new Map<string, string>();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      const path = new URL(request.url).pathname;
      const body = files.get(path);
      if (body === undefined) return new Response("not found", { status: 404 });
      const type = path.endsWith(".js") ? "application/javascript" : "text/html";
      return new Response(body, {
        headers: { "content-type": `${type}; charset=utf-8`, "cache-control": "no-store" },
      });
    },
  });
  return {
    origin: `http://127.0.0.1:${server.port}`,
    set: (path, body) => files.set(path, body),
    stop: () => server.stop(true),
  };
}

/** A page that loads `scripts` (URLs, in order) and carries the test's run id in its URL. */
export function pageHtml(scripts: string[], extraHead = ""): string {
  const tags = scripts.map((src) => `<script src="${src}"></script>`).join("\n");
  return `<!doctype html><html><head><meta charset="utf-8"><title>sluice SDK test</title>
${extraHead}
${tags}</head><body><h1>sluice browser SDK test</h1><p id="status">loaded</p></body></html>`;
}

/** The events stored from the page whose URL carries `run` (SDKs put it in context.page.url). */
export async function storedFromRun(s: TestServer, run: string) {
  const events = await storedEvents(s.dataDir);
  return events.filter((e) => {
    const page = (e.context as { page?: { url?: string } } | undefined)?.page;
    return typeof page?.url === "string" && page.url.includes(run);
  });
}

/** Polls until `check` holds for the stored events of `run`; returns them (or throws, naming what it saw). */
export async function waitForStored(
  s: TestServer,
  run: string,
  check: (events: Record<string, unknown>[]) => boolean,
  timeoutMs = 40_000,
): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + timeoutMs;
  let events: Record<string, unknown>[] = [];
  while (Date.now() < deadline) {
    events = await storedFromRun(s, run);
    if (check(events)) return events;
    await Bun.sleep(50);
  }
  throw new Error(
    `stored events of run ${run} never met the condition; saw ${events.length}: ${JSON.stringify(
      events.map((e) => ({ type: e.type, messageId: e.messageId })),
    )}`,
  );
}

/** How many events of each type. */
export function countByType(events: Record<string, unknown>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events) out[String(e.type)] = (out[String(e.type)] ?? 0) + 1;
  return out;
}

/** A fresh run id for one page visit, e.g. `run-k3j9x2`. */
export function newRun(): string {
  return `run-${crypto.randomUUID().slice(0, 8)}`;
}

/** A request the page sent to sluice. */
export interface SentRequest {
  method: string;
  path: string;
  /** As sent; complete once `withHeaders` has been awaited. */
  headers: Record<string, string>;
  body: string;
}

const headerReads = new WeakMap<SentRequest[], Promise<unknown>[]>();

/** Records every request the page sends to `origin` (method, path, headers, body). */
export function recordRequests(page: Page | BrowserContext, origin: string): SentRequest[] {
  const seen: SentRequest[] = [];
  const reads: Promise<unknown>[] = [];
  headerReads.set(seen, reads);
  const onRequest = (r: Request) => {
    if (!r.url().startsWith(origin)) return;
    const url = new URL(r.url());
    const record = {
      method: r.method(),
      path: url.pathname + url.search,
      headers: r.headers(),
      body: r.postData() ?? "",
    };
    seen.push(record);
    // The headers known when the request starts may be provisional (Content-Type
    // missing): the full set comes from Chromium a little later.
    reads.push(
      r.allHeaders().then(
        (h) => {
          record.headers = h;
        },
        () => undefined,
      ),
    );
  };
  page.on("request", onRequest);
  return seen;
}

/**
 * The recorded request `match` picks, with its full headers, once the browser has told
 * of it: its "request" event may come after the server has stored what it carried.
 */
export function sentRequest(
  requests: SentRequest[],
  match: (r: SentRequest) => boolean,
  what: string,
): Promise<SentRequest> {
  return waitFor(async () => (await withHeaders(requests)).find(match), { what });
}

/** `requests` with every recorded request's full headers in. */
export async function withHeaders(requests: SentRequest[]): Promise<SentRequest[]> {
  await Promise.all(headerReads.get(requests) ?? []);
  return requests;
}

/** Errors the page logged or threw (to show in a failing test). */
export function recordPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  return errors;
}

/**
 * Makes requests to `paths` on `origin` reach sluice (from the test process, with the
 * browser's headers and body) but fail in the browser, as when an answer is lost on
 * the way back: sluice stores the events while the SDK believes they were not sent.
 * Later attempts (the SDK's own retries) fail without reaching sluice, until
 * `passThroughAfterReload` lets the reloaded page's requests through: so what reaches
 * sluice again is what the SDK resends after a reload, not a retry before it.
 */
export async function loseAnswers(context: BrowserContext, origin: string, paths: RegExp) {
  const count = { forwarded: 0, blocked: 0 };
  let passThrough = false;
  await context.route(
    (url) => url.origin === origin && paths.test(url.pathname),
    async (route) => {
      if (passThrough || route.request().method() === "OPTIONS") return route.continue();
      if (count.forwarded === 0) {
        count.forwarded++;
        await (await route.fetch()).body();
      } else {
        count.blocked++;
      }
      await route.abort("connectionreset");
    },
  );
  return {
    count,
    /** From the next document `page` loads on, requests go through untouched. */
    passThroughAfterReload(page: Page) {
      page.once("domcontentloaded", () => {
        passThrough = true;
      });
    },
  };
}

export type { Browser, BrowserContext, Page };

/** The events in the page's POSTs (batches unpacked) whose page URL carries `run`. */
export function sentEvents(requests: SentRequest[], run: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const r of requests) {
    if (r.method !== "POST" || r.body === "") continue;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(r.body);
    } catch {
      continue;
    }
    const items = Array.isArray(body.batch) ? (body.batch as Record<string, unknown>[]) : [body];
    for (const e of items) {
      const url = (e.context as { page?: { url?: string } } | undefined)?.page?.url;
      if (typeof url === "string" && url.includes(run)) out.push(e);
    }
  }
  return out;
}

/** The fields an SDK sets that sluice must store as sent. */
const KEPT = [
  "type",
  "userId",
  "anonymousId",
  "event",
  "name",
  "properties",
  "traits",
  "groupId",
  "previousId",
] as const;

/**
 * Each event the SDK sent is stored exactly once, with the SDK's values of the fields
 * in KEPT, and no stored event holds the write key (nor its secret half).
 */
export function storedAsSent(
  stored: Record<string, unknown>[],
  sent: Record<string, unknown>[],
  key: string,
): { problems: string[] } {
  const problems: string[] = [];
  const ids = new Set(sent.map((e) => e.messageId));
  for (const id of ids) {
    const mine = stored.filter((e) => e.messageId === id);
    if (mine.length !== 1) problems.push(`${id}: stored ${mine.length} times`);
    const original = sent.find((e) => e.messageId === id)!;
    for (const field of KEPT) {
      // An id that is null or "" is stored as absent (analytics.js sends `userId: null`
      // and RudderStack `userId: ""` before identify).
      if (original[field] == null || original[field] === "" || mine[0] === undefined) continue;
      if (!Bun.deepEquals(mine[0][field], original[field])) {
        problems.push(
          `${id}: ${field} stored as ${JSON.stringify(mine[0][field])}, sent ${JSON.stringify(original[field])}`,
        );
      }
    }
  }
  for (const e of stored) {
    if (!ids.has(e.messageId)) problems.push(`${e.messageId}: stored but never sent`);
  }
  const text = JSON.stringify(stored);
  if (text.includes(key) || text.includes(key.slice(key.indexOf(":") + 1))) {
    problems.push("a stored event holds the write key");
  }
  return { problems };
}

/**
 * Records what the page hands to `navigator.sendBeacon` (Playwright does not report
 * beacons as requests): wraps it before any page script runs, calling the original.
 */
export async function recordBeacons(context: BrowserContext) {
  await context.addInitScript(() => {
    const nav = navigator as unknown as {
      sendBeacon(url: string, data?: unknown): boolean;
    };
    const original = nav.sendBeacon.bind(nav);
    const seen: Promise<{ url: string; body: string }>[] = [];
    (globalThis as unknown as { __sluiceBeacons: typeof seen }).__sluiceBeacons = seen;
    nav.sendBeacon = (url: string, data?: unknown) => {
      const blob = data as { text?: () => Promise<string> } | string | undefined;
      const text =
        typeof blob === "string"
          ? Promise.resolve(blob)
          : blob?.text
            ? blob.text()
            : Promise.resolve("");
      seen.push(text.then((body) => ({ url: String(url), body })));
      return original(url, data);
    };
  });
}

/** The beacons `page` sent so far, as requests (see `recordBeacons`). */
export async function beaconsOf(page: Page): Promise<SentRequest[]> {
  const beacons = await page.evaluate(() =>
    Promise.all(
      (globalThis as unknown as { __sluiceBeacons: Promise<{ url: string; body: string }>[] })
        .__sluiceBeacons,
    ),
  );
  return beacons.map((b) => {
    const url = new URL(b.url);
    return { method: "POST", path: url.pathname + url.search, headers: {}, body: b.body };
  });
}

/**
 * Sends `request` (one the SDK sent) again from `page`, with its headers and body, as
 * a fetch or, for a beacon, as `navigator.sendBeacon`: what an SDK that resends after
 * a reload would send. Returns the answer (a beacon's is never seen: status 0).
 */
export async function resendFromPage(
  page: Page,
  origin: string,
  request: SentRequest,
  asBeacon = false,
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = {};
  for (const name of ["content-type", "authorization", "x-write-key", "anonymousid", "sentat"]) {
    const v = request.headers[name];
    if (v !== undefined) headers[name] = v;
  }
  return page.evaluate(
    async ({ url, headers, body, asBeacon }) => {
      if (asBeacon) {
        const nav = navigator as unknown as { sendBeacon(u: string, d: unknown): boolean };
        nav.sendBeacon(url, new Blob([body], { type: "text/plain" }));
        return { status: 0, body: null };
      }
      const res = await fetch(url, { method: "POST", headers, body });
      return { status: res.status, body: await res.json() };
    },
    { url: `${origin}${request.path}`, headers, body: request.body, asBeacon },
  );
}

/** The number of duplicates sluice has counted for source `web` (from /metrics). */
export async function duplicatesCounted(s: TestServer): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith('sluice_events_total{source="web",outcome="duplicate"}'));
  return line ? Number(line.split(" ").at(-1)) : 0;
}
