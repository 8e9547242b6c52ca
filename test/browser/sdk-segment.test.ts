import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";
import {
  type Browser,
  bundle,
  chromiumMissing,
  countByType,
  launchChromium,
  loseAnswers,
  newRun,
  type PageServer,
  pageHtml,
  readmeBlock,
  recordPageErrors,
  recordRequests,
  resendFromPage,
  sentEvents,
  sentRequest,
  startPageServer,
  storedAsSent,
  storedFromRun,
  substitute,
  waitForStored,
  withHeaders,
} from "./sdk-harness.ts";

// Segment analytics.js 2.0 (@segment/analytics-next, from npm) in Chromium, on a page
// of another origin, pointed at sluice by README's recipe (cdnURL only): it loads its
// settings from sluice and posts its events to sluice's short paths, with the key from
// the settings' apiKey.

const README_KEY = "YOUR_BROWSER_KEY";
const README_HOST = "https://events.example.com";

let s: TestServer;
let pages: PageServer;
let browser: Browser;

beforeAll(async () => {
  if (chromiumMissing) return;
  pages = startPageServer();
  s = await startTestServer({ web: { allowedOrigins: [pages.origin] } });
  const recipe = substitute(readmeBlock("<!-- recipe: segment -->"), {
    [README_KEY]: s.keys.browser,
    [README_HOST]: s.url,
  });
  pages.set("/default.js", await bundle(`${recipe}\nwindow.analytics = analytics;\n`));
  pages.set(
    "/batching.js",
    await bundle(`import { AnalyticsBrowser } from "@segment/analytics-next";
window.analytics = AnalyticsBrowser.load(
  { writeKey: ${JSON.stringify(s.keys.browser)}, cdnURL: ${JSON.stringify(s.url)} },
  { integrations: { "Segment.io": { deliveryStrategy: { strategy: "batching", config: { size: 5, timeout: 300 } } } } },
);
`),
  );
  pages.set("/default.html", pageHtml(["/default.js"]));
  pages.set("/batching.html", pageHtml(["/batching.js"]));
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  if (chromiumMissing) return;
  await browser?.close();
  pages?.stop();
  await s?.cleanup();
});

/** The five calls every SDK test makes. */
async function fiveCalls(page: import("playwright-core").Page) {
  await page.evaluate(async () => {
    // biome-ignore lint/suspicious/noExplicitAny: the SDK's global
    const analytics = (globalThis as any).analytics;
    await analytics.page("Home", { section: "docs" });
    await analytics.track("Clicked", { plan: "pro", n: 3 });
    await analytics.identify("user-1", { email: "a@example.com" });
    await analytics.group("group-1", { name: "Acme" });
    await analytics.alias("user-1-new", "user-1");
  });
}

/** The SDK-independent half of the check: each call became the event it should. */
function expectFive(events: Record<string, unknown>[]) {
  expect(countByType(events)).toEqual({ page: 1, track: 1, identify: 1, group: 1, alias: 1 });
  const byType = Object.fromEntries(events.map((e) => [e.type, e]));
  expect(byType.page).toMatchObject({ name: "Home", properties: { section: "docs" } });
  expect(byType.track).toMatchObject({ event: "Clicked", properties: { plan: "pro", n: 3 } });
  expect(byType.identify).toMatchObject({ userId: "user-1", traits: { email: "a@example.com" } });
  expect(byType.group).toMatchObject({ groupId: "group-1", traits: { name: "Acme" } });
  // analytics.js rewrites an alias' userId itself (its onAlias); sluice keeps what it sent.
  expect(byType.alias).toMatchObject({ previousId: "user-1" });
  for (const e of events) expect(e).toMatchObject({ sourceId: "web", keyId: "wk_browser" });
}

describe.skipIf(Boolean(chromiumMissing))("Segment analytics.js 2.0 in Chromium", () => {
  for (const variant of ["default", "batching"] as const) {
    test(`${variant}: page, track, identify, group, alias are each stored once, as sent`, async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const errors = recordPageErrors(page);
      const requests = recordRequests(page, s.url);
      const run = newRun();
      await page.goto(`${pages.origin}/${variant}.html?${run}`);
      await fiveCalls(page);
      const stored = await waitForStored(s, run, (e) => e.length >= 5).catch((err) => {
        throw new Error(`${err.message}\npage errors: ${errors.join("\n")}`);
      });
      expectFive(stored);
      expect(storedAsSent(stored, sentEvents(requests, run), s.keys.browser)).toEqual({
        problems: [],
      });
      const posts = requests.filter((r) => r.method === "POST").map((r) => r.path);
      if (variant === "batching") expect(posts).toContain("/v1/b");
      else
        expect(posts).toEqual(
          expect.arrayContaining(["/v1/p", "/v1/t", "/v1/i", "/v1/g", "/v1/a"]),
        );
      // The key came from the settings' apiKey: Basic auth on every post.
      const auth = `Basic ${btoa(`${s.keys.browser}:`)}`;
      for (const r of (await withHeaders(requests)).filter(
        (r) => r.method === "POST" && r.path !== "/v1/m",
      )) {
        expect(r.headers.authorization).toBe(auth);
      }
      await context.close();
    }, 120_000);
  }

  test("an event whose answer was lost is resent after a reload and stored once", async () => {
    const context = await browser.newContext();
    const lost = await loseAnswers(context, s.url, /^\/v1\/[tpigas]$/);
    const page = await context.newPage();
    const run = newRun();
    await page.goto(`${pages.origin}/default.html?${run}`);
    await page.evaluate(() => {
      // biome-ignore lint/suspicious/noExplicitAny: the SDK's global
      void (globalThis as any).analytics.track("Lost Answer", { attempt: 1 });
    });
    const [first] = await waitForStored(s, run, (e) => e.length === 1);
    expect(lost.count.forwarded).toBe(1);

    // The SDK saw a network error and kept the event; it persists it on pagehide and
    // sends it again from the reloaded page, with the same messageId.
    lost.passThroughAfterReload(page);
    const id = String(first!.messageId);
    const resent = page.waitForResponse(
      (r) => r.url() === `${s.url}/v1/t` && (r.request().postData() ?? "").includes(id),
      { timeout: 60_000 },
    );
    await page.reload();
    expect((await resent).status()).toBe(200);
    expect((await storedFromRun(s, run)).map((e) => e.messageId)).toEqual([id]);
    await context.close();
  }, 120_000);

  test("batching: the SDK's batch sent again from the reloaded page is stored once", async () => {
    // The batching strategy keeps no queue across a reload, so the SDK never resends a
    // batch itself: this sends its own request again, headers and body as it sent them.
    const context = await browser.newContext();
    const page = await context.newPage();
    const requests = recordRequests(page, s.url);
    const run = newRun();
    await page.goto(`${pages.origin}/batching.html?${run}`);
    await page.evaluate(async () => {
      // biome-ignore lint/suspicious/noExplicitAny: the SDK's global
      await (globalThis as any).analytics.track("Batched", { attempt: 1 });
    });
    const [first] = await waitForStored(s, run, (e) => e.length === 1);
    const batch = await sentRequest(
      requests,
      (r) => r.path === "/v1/b" && r.body.includes(String(first!.messageId)),
      "the SDK's batch request as the browser sent it",
    );
    expect(batch.headers["content-type"]).toStartWith("text/plain");
    await page.reload();
    const again = await resendFromPage(page, s.url, batch);
    expect(again).toMatchObject({ status: 200, body: { accepted: 0, duplicates: 1 } });
    expect((await storedFromRun(s, run)).map((e) => e.messageId)).toEqual([first!.messageId]);
    await context.close();
  }, 120_000);
});
