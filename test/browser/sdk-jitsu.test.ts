import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestServer, type TestServer } from "../support/server.ts";
import {
  type Browser,
  bundle,
  chromiumMissing,
  countByType,
  launchChromium,
  newRun,
  type Page,
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

// Jitsu's browser SDK in Chromium, on a page of another origin, both ways README shows:
// the npm package (@jitsu/js, `host` option) bundled into the page, and the snippet
// `<script src="…/p.js" data-write-key="…">` loading p.js from sluice itself. Both post
// to /api/s/{type} with the key in X-Write-Key. Jitsu's SDK has no alias call.

let s: TestServer;
let pages: PageServer;
let browser: Browser;

beforeAll(async () => {
  if (chromiumMissing) return;
  pages = startPageServer();
  s = await startTestServer({ web: { allowedOrigins: [pages.origin] } });
  const values = { YOUR_BROWSER_KEY: s.keys.browser, "https://events.example.com": s.url };
  const npm = substitute(readmeBlock("<!-- recipe: jitsu-npm -->"), values);
  pages.set("/npm.js", await bundle(`${npm}\nglobalThis.jitsu = analytics;\n`));
  pages.set("/npm.html", pageHtml(["/npm.js"]));
  const snippet = substitute(readmeBlock("<!-- recipe: jitsu-snippet -->"), values);
  pages.set("/snippet.html", pageHtml([], snippet));
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  if (chromiumMissing) return;
  await browser?.close();
  pages?.stop();
  await s?.cleanup();
});

/** The calls Jitsu's SDK has; p.js makes the page call itself when it loads. */
async function calls(page: Page, withPage: boolean) {
  await page.waitForFunction(() => "jitsu" in globalThis, null, { timeout: 15_000 });
  await page.evaluate(async (withPage) => {
    // biome-ignore lint/suspicious/noExplicitAny: the SDK's global
    const jitsu = (globalThis as any).jitsu;
    if (withPage) await jitsu.page("Home", { section: "docs" });
    await jitsu.track("Clicked", { plan: "pro", n: 3 });
    await jitsu.identify("user-1", { email: "a@example.com" });
    await jitsu.group("group-1", { name: "Acme" });
  }, withPage);
}

const VARIANTS = { npm: true, snippet: false } as const;

describe.skipIf(Boolean(chromiumMissing))("Jitsu in Chromium", () => {
  for (const [variant, withPage] of Object.entries(VARIANTS)) {
    test(`${variant}: page, track, identify, group are each stored once, as sent`, async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const errors = recordPageErrors(page);
      const requests = recordRequests(page, s.url);
      const run = newRun();
      await page.goto(`${pages.origin}/${variant}.html?${run}`);
      await calls(page, withPage);
      const stored = await waitForStored(s, run, (e) => e.length >= 4).catch((err) => {
        throw new Error(`${err.message}\npage errors: ${errors.join("\n")}`);
      });
      expect(countByType(stored)).toEqual({ page: 1, track: 1, identify: 1, group: 1 });
      const byType = Object.fromEntries(stored.map((e) => [e.type, e]));
      // Jitsu sends a page's name as properties.name.
      if (withPage) {
        expect(byType.page).toMatchObject({ properties: { name: "Home", section: "docs" } });
      }
      expect(byType.track).toMatchObject({ event: "Clicked", properties: { plan: "pro", n: 3 } });
      expect(byType.identify).toMatchObject({
        userId: "user-1",
        traits: { email: "a@example.com" },
      });
      expect(byType.group).toMatchObject({ groupId: "group-1", traits: { name: "Acme" } });
      for (const e of stored) expect(e).toMatchObject({ sourceId: "web", keyId: "wk_browser" });
      expect(storedAsSent(stored, sentEvents(requests, run), s.keys.browser)).toEqual({
        problems: [],
      });
      const posts = (await withHeaders(requests)).filter((r) => r.method === "POST");
      expect(posts.map((r) => r.path)).toEqual(
        expect.arrayContaining(["/api/s/page", "/api/s/track", "/api/s/identify", "/api/s/group"]),
      );
      for (const r of posts) expect(r.headers["x-write-key"]).toBe(s.keys.browser);
      if (variant === "snippet") {
        const script = requests.find((r) => r.path === "/p.js");
        expect(script?.method).toBe("GET");
      }
      await context.close();
    }, 120_000);

    test(`${variant}: an event sent again from the reloaded page is stored once`, async () => {
      // Jitsu's SDK keeps no queue across a reload, so it never resends an event itself:
      // this sends its own request again, headers and body as it sent them.
      const context = await browser.newContext();
      const page = await context.newPage();
      const requests = recordRequests(page, s.url);
      const run = newRun();
      await page.goto(`${pages.origin}/${variant}.html?${run}`);
      await page.waitForFunction(() => "jitsu" in globalThis, null, { timeout: 15_000 });
      await page.evaluate(async () => {
        // biome-ignore lint/suspicious/noExplicitAny: the SDK's global
        await (globalThis as any).jitsu.track("Sent Twice", { attempt: 1 });
      });
      const stored = await waitForStored(s, run, (e) => e.some((x) => x.event === "Sent Twice"));
      const first = stored.find((e) => e.event === "Sent Twice")!;
      const original = await sentRequest(
        requests,
        (r) => r.path === "/api/s/track" && r.body.includes(String(first.messageId)),
        "the SDK's track request as the browser sent it",
      );
      await page.reload();
      const again = await resendFromPage(page, s.url, original);
      expect(again).toEqual({ status: 200, body: { ok: true, success: true } });
      const after = (await storedFromRun(s, run)).filter((e) => e.messageId === first.messageId);
      expect(after).toHaveLength(1);
      await context.close();
    }, 120_000);
  }
});
