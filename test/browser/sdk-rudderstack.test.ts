import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";
import {
  type Browser,
  beaconsOf,
  bundle,
  chromiumMissing,
  countByType,
  duplicatesCounted,
  launchChromium,
  loseAnswers,
  newRun,
  type Page,
  type PageServer,
  pageHtml,
  readmeBlock,
  recordBeacons,
  recordPageErrors,
  recordRequests,
  resendFromPage,
  sentEvents,
  startPageServer,
  storedAsSent,
  storedFromRun,
  substitute,
  waitForStored,
} from "./sdk-harness.ts";

// RudderStack's JS SDK v3 (@rudderstack/analytics-js, from npm, its /bundled build) in
// Chromium, on a page of another origin, pointed at sluice by README's recipe: it
// fetches /sourceConfig first, then sends by XHR (/v1/{type}), by a batched queue
// (/v1/batch) or by sendBeacon (/beacon/v1/batch).

let s: TestServer;
let pages: PageServer;
let browser: Browser;

/** The README recipe with extra load options (JSON) merged into its third argument. */
function recipeWith(options: Record<string, unknown>): string {
  const recipe = substitute(readmeBlock("<!-- recipe: rudderstack -->"), {
    YOUR_BROWSER_KEY: s.keys.browser,
    "https://events.example.com": s.url,
  });
  const extra = JSON.stringify(options).slice(1, -1);
  const patched =
    extra === "" ? recipe : recipe.replace(/\{\n(\s+)configUrl/, `{ ${extra},\n$1configUrl`);
  if (extra !== "" && patched === recipe) throw new Error("README recipe changed shape");
  return `${patched}\nglobalThis.rudderanalytics = analytics;\n`;
}

const VARIANTS = {
  xhr: {},
  batched: { queueOptions: { batch: { enabled: true, maxItems: 5, flushInterval: 300 } } },
  beacon: { useBeacon: true, beaconQueueOptions: { flushQueueInterval: 300 } },
} as const;

beforeAll(async () => {
  if (chromiumMissing) return;
  pages = startPageServer();
  s = await startTestServer({ web: { allowedOrigins: [pages.origin] } });
  for (const [name, options] of Object.entries(VARIANTS)) {
    pages.set(`/${name}.js`, await bundle(recipeWith(options)));
    pages.set(`/${name}.html`, pageHtml([`/${name}.js`]));
  }
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  if (chromiumMissing) return;
  await browser?.close();
  pages?.stop();
  await s?.cleanup();
});

/** Waits until the SDK has loaded its source config (its ready callback ran). */
async function whenReady(page: Page) {
  await page.evaluate(
    () =>
      new Promise<void>((resolve) => {
        // biome-ignore lint/suspicious/noExplicitAny: the SDK's global
        (globalThis as any).rudderanalytics.ready(() => resolve());
      }),
  );
}

async function fiveCalls(page: Page) {
  await page.evaluate(() => {
    // biome-ignore lint/suspicious/noExplicitAny: the SDK's global
    const analytics = (globalThis as any).rudderanalytics;
    analytics.page("Home", { section: "docs" });
    analytics.track("Clicked", { plan: "pro", n: 3 });
    analytics.identify("user-1", { email: "a@example.com" });
    analytics.group("group-1", { name: "Acme" });
    analytics.alias("user-1-new", "user-1");
  });
}

function expectFive(events: Record<string, unknown>[]) {
  expect(countByType(events)).toEqual({ page: 1, track: 1, identify: 1, group: 1, alias: 1 });
  const byType = Object.fromEntries(events.map((e) => [e.type, e]));
  expect(byType.page).toMatchObject({ name: "Home", properties: { section: "docs" } });
  expect(byType.track).toMatchObject({ event: "Clicked", properties: { plan: "pro", n: 3 } });
  expect(byType.identify).toMatchObject({ userId: "user-1" });
  expect(byType.group).toMatchObject({ groupId: "group-1", traits: { name: "Acme" } });
  expect(byType.alias).toMatchObject({ userId: "user-1-new", previousId: "user-1" });
  for (const e of events) expect(e).toMatchObject({ sourceId: "web", keyId: "wk_browser" });
}

const PATHS = {
  xhr: ["/v1/page", "/v1/track", "/v1/identify", "/v1/group", "/v1/alias"],
  batched: ["/v1/batch"],
  beacon: [`/beacon/v1/batch`],
};

describe.skipIf(Boolean(chromiumMissing))("RudderStack JS SDK v3 in Chromium", () => {
  for (const variant of Object.keys(VARIANTS) as (keyof typeof VARIANTS)[]) {
    test(`${variant}: page, track, identify, group, alias are each stored once, as sent`, async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const errors = recordPageErrors(page);
      const requests = recordRequests(page, s.url);
      await recordBeacons(context);
      const run = newRun();
      await page.goto(`${pages.origin}/${variant}.html?${run}`);
      await whenReady(page);
      await fiveCalls(page);
      const stored = await waitForStored(s, run, (e) => e.length >= 5).catch((err) => {
        throw new Error(`${err.message}\npage errors: ${errors.join("\n")}`);
      });
      expectFive(stored);
      if (variant === "beacon") requests.push(...(await beaconsOf(page)));
      expect(storedAsSent(stored, sentEvents(requests, run), s.keys.browser)).toEqual({
        problems: [],
      });
      const config = requests.find((r) => r.path.startsWith("/sourceConfig/?"));
      expect(config?.path).toContain(`writeKey=${encodeURIComponent(s.keys.browser)}`);
      const posts = requests.filter((r) => r.method === "POST").map((r) => r.path.split("?")[0]);
      expect(posts).toEqual(expect.arrayContaining(PATHS[variant]));
      await context.close();
    }, 120_000);
  }

  for (const variant of ["xhr", "batched"] as const) {
    test(`${variant}: an event whose answer was lost is resent after a reload and stored once`, async () => {
      const path = variant === "xhr" ? "/v1/track" : "/v1/batch";
      const context = await browser.newContext();
      const lost = await loseAnswers(context, s.url, new RegExp(`^${path}$`));
      const page = await context.newPage();
      const run = newRun();
      await page.goto(`${pages.origin}/${variant}.html?${run}`);
      await whenReady(page);
      await page.evaluate(() => {
        // biome-ignore lint/suspicious/noExplicitAny: the SDK's global
        (globalThis as any).rudderanalytics.track("Lost Answer", { attempt: 1 });
      });
      const [first] = await waitForStored(s, run, (e) => e.length === 1);
      expect(lost.count.forwarded).toBe(1);
      lost.passThroughAfterReload(page);
      // The SDK's retry queue lives in localStorage; the reloaded page reclaims it and
      // sends the event again, with the same messageId.
      const id = String(first!.messageId);
      const resent = page.waitForResponse(
        (r) => r.url() === `${s.url}${path}` && (r.request().postData() ?? "").includes(id),
        { timeout: 60_000 },
      );
      await page.reload();
      expect((await resent).status()).toBe(200);
      expect((await storedFromRun(s, run)).map((e) => e.messageId)).toEqual([id]);
      await context.close();
    }, 120_000);
  }

  test("beacon: the same beacon sent again from the reloaded page is stored once", async () => {
    // A beacon's answer is never read, so the SDK never resends one itself: this sends
    // the SDK's own beacon again, byte for byte, as a page that did would.
    const context = await browser.newContext();
    await recordBeacons(context);
    const page = await context.newPage();
    const run = newRun();
    await page.goto(`${pages.origin}/beacon.html?${run}`);
    await whenReady(page);
    await page.evaluate(() => {
      // biome-ignore lint/suspicious/noExplicitAny: the SDK's global
      (globalThis as any).rudderanalytics.track("Beaconed", { attempt: 1 });
    });
    const [first] = await waitForStored(s, run, (e) => e.length === 1);
    const beacon = (await beaconsOf(page)).find((b) => b.body.includes(String(first!.messageId)));
    expect(beacon?.path).toBe(`/beacon/v1/batch?writeKey=${s.keys.browser}`);
    const before = await duplicatesCounted(s);
    await page.reload();
    await resendFromPage(page, s.url, beacon!, true);
    await waitFor(async () => (await duplicatesCounted(s)) > before, { intervalMs: 50 });
    expect(await duplicatesCounted(s)).toBe(before + 1);
    expect((await storedFromRun(s, run)).map((e) => e.messageId)).toEqual([first!.messageId]);
    await context.close();
  }, 120_000);
});
