import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { ADMIN_TOKEN, startAdminServer } from "../admin/support.ts";
import { type Receiver, startReceiver } from "../delivery/receiver.ts";
import type { TestServer } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";
import {
  axeViolations,
  DESKTOP,
  haveChromium,
  launch,
  openPage,
  PHONE,
  shot,
} from "./inspector-support.ts";

const FUNCTION = `export default function (event, ctx) {
  ctx.log.info("tagged by the inspector test", { messageId: event.messageId });
  event.properties = { ...event.properties, tagged: true };
}
`;

let server: TestServer;
let browser: Browser;
/** A webhook receiver that fails the first batch (500) and takes the rest. */
let hook: Receiver;

describe.skipIf(!haveChromium)("the inspector in Chromium", () => {
  beforeAll(async () => {
    hook = startReceiver([500]);
    server = await startAdminServer({
      files: { "functions/tagger.js": FUNCTION },
      config: {
        functions: [{ id: "tagger", file: "./functions/tagger.js" }],
        connections: [
          {
            id: "con_archive",
            source: "web",
            destination: { type: "file", path: "./out/web.ndjson", maxWaitMs: 50 },
            functions: ["tagger"],
          },
          {
            id: "con_hook",
            source: "other",
            destination: { type: "webhook", url: hook.url, maxWaitMs: 20, retryBaseMs: 50 },
          },
        ],
      },
    });
    browser = await launch();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.cleanup();
    hook?.stop();
  }, 30_000);

  const post = (path: string, body: unknown) =>
    server.post(path, body, { "x-write-key": server.keys.server });
  const track = (messageId: string, event = "Signed Up") => ({
    type: "track",
    event,
    userId: "user-42",
    messageId,
    properties: { plan: "pro" },
  });

  /** A page at `size`, signed in with the admin token, on the live view. */
  async function signedIn(size = DESKTOP, scheme: "light" | "dark" = "light"): Promise<Page> {
    const page = await openPage(browser, size, scheme);
    await page.goto(`${server.url}/inspector/`);
    await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Live events" }).waitFor();
    await page.locator(".conn-live").waitFor();
    return page;
  }

  async function expectAccessible(page: Page, view: string) {
    const violations = await axeViolations(page);
    expect({ view, violations }).toEqual({ view, violations: [] });
  }

  test("GET / leads to the page, which asks for the token and refuses a wrong one", async () => {
    const page = await openPage(browser, DESKTOP);
    await page.goto(`${server.url}/`);
    expect(new URL(page.url()).pathname).toBe("/inspector/");
    await page.getByRole("heading", { name: "Sign in to the inspector" }).waitFor();
    await expectAccessible(page, "sign-in");
    await shot(page, "signin-desktop-light");
    await page.getByLabel("Admin token").fill("adm_test:wrong");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("That token was not accepted.").waitFor();
    await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Live events" }).waitFor();
    await page.context().close();
  }, 60_000);

  test("live: accepted within 2 s, rejected with its reason, duplicate marked", async () => {
    const page = await signedIn();
    const started = Date.now();
    expect((await post("/v1/track", track("live-1"))).status).toBe(200);
    const row = page.locator('li.row[data-status="accepted"][data-message-id="live-1"]');
    await row.waitFor({ timeout: 2000 });
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(row.textContent()).resolves.toContain("Signed Up");

    expect(
      (await post("/v1/track", { type: "track", userId: "u", messageId: "bad-1" })).status,
    ).toBe(400);
    const rejected = page.locator('li.row[data-status="rejected"][data-message-id="bad-1"]');
    await rejected.waitFor({ timeout: 2000 });
    const text = (await rejected.textContent()) ?? "";
    expect(text).toContain("track needs event");
    await rejected.getByRole("button", { name: "Details" }).click();
    await rejected.getByText('"messageId": "bad-1"').waitFor();

    expect((await post("/v1/track", track("live-1"))).status).toBe(200);
    await page
      .locator('li.row[data-status="duplicate"][data-message-id="live-1"]')
      .waitFor({ timeout: 2000 });
    await page.getByTestId("rate").filter({ hasNotText: /^0$/ }).waitFor({ timeout: 3000 });
    await expectAccessible(page, "live");
    await shot(page, "live-desktop-light");

    // Filters: only rejected attempts.
    for (const s of ["accepted", "duplicate"]) {
      await page.getByRole("checkbox", { name: s, exact: true }).uncheck();
    }
    expect(await page.locator('li.row[data-status="accepted"]').count()).toBe(0);
    expect(await page.locator('li.row[data-status="rejected"]').count()).toBe(1);
    await page.context().close();
  }, 60_000);

  test("search by messageId, then the event's detail with its path and a function's log line", async () => {
    expect((await post("/v1/track", track("find-me", "Plan Chosen"))).status).toBe(200);
    const page = await signedIn();
    await page.getByRole("link", { name: "Search", exact: true }).click();
    await page.getByLabel("messageId").fill("find-me");
    await page.getByRole("button", { name: "Search" }).click();
    const hit = page.locator('tr[data-message-id="find-me"]');
    await hit.waitFor({ timeout: 5000 });
    expect(await page.locator("tbody tr").count()).toBe(1);
    await expectAccessible(page, "search");
    await shot(page, "search-desktop-light");
    await hit.getByRole("link").click();
    await page.getByRole("heading", { name: /Plan Chosen/ }).waitFor();
    const step = page.locator('[data-connection="con_archive"]');
    await step.getByText("tagged by the inspector test").waitFor({ timeout: 10_000 });
    await step.getByText("delivered").waitFor({ timeout: 10_000 });
    await page.getByText('"tagged"').count();
    await page.getByText('"messageId": "find-me"').waitFor();
    // Stored: the time its record became durable, beside the log position.
    const stored = page.locator(".timeline li", { hasText: "log position" }).locator("time");
    expect(await stored.getAttribute("datetime")).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
    await expectAccessible(page, "detail");
    await shot(page, "detail-desktop-light");
    // A bad parameter is shown, not swallowed.
    await page.goto(`${server.url}/inspector/#/search?from=2024-01-02T00:00&to=2024-01-01T00:00`);
    await page.getByRole("alert").getByText("to: must be after from").waitFor();
    await page.context().close();
  }, 60_000);

  test("pause holds new attempts back, resume shows them", async () => {
    const page = await signedIn();
    await page.getByRole("button", { name: "Pause" }).click();
    expect((await post("/v1/track", track("held-1"))).status).toBe(200);
    await page.getByRole("button", { name: "Resume (1 new)" }).waitFor({ timeout: 3000 });
    expect(await page.locator('li.row[data-message-id="held-1"]').count()).toBe(0);
    await page.getByRole("button", { name: "Resume (1 new)" }).click();
    await page.locator('li.row[data-message-id="held-1"]').waitFor({ timeout: 2000 });
    await page.context().close();
  }, 60_000);

  test("a delivery that failed, then succeeded, shows both attempts in the event's path", async () => {
    const res = await server.post("/v1/track", track("retried-1", "Paid"), {
      "x-write-key": server.keys.other,
    });
    expect(res.status).toBe(200);
    await hook.waitFor(1, 15_000);
    expect(hook.batches.map((b) => b.status)).toEqual([500, 200]);
    const page = await signedIn();
    await page.goto(`${server.url}/inspector/#/event/other/retried-1`);
    const step = page.locator('[data-connection="con_hook"]');
    await step.getByText("delivered").waitFor({ timeout: 10_000 });
    await step.getByText(/Delivery attempt 1 .*failed \(500\)/).waitFor({ timeout: 10_000 });
    await step.getByText(/Delivery attempt 2 .*ok/).waitFor();
    await shot(page, "detail-retried-desktop-light");
    await page.context().close();
  }, 60_000);

  test("a dead-lettered event, redriven from the connections view: its path tells both", async () => {
    hook.fail = () => 422;
    const res = await server.post("/v1/track", track("refused-1", "Paid"), {
      "x-write-key": server.keys.other,
    });
    expect(res.status).toBe(200);
    await waitFor(() => hook.batches.some((b) => b.status === 422), { what: "the refusal" });
    const page = await signedIn();
    await page.getByRole("link", { name: "Connections" }).click();
    const card = page.locator('[data-connection="con_hook"]');
    await card.locator(".badge").getByText("failing").waitFor({ timeout: 10_000 });
    hook.fail = () => undefined;
    await card.getByRole("button", { name: "Redrive dead letters" }).click();
    await card.locator(".badge").getByText("running").waitFor({ timeout: 10_000 });
    await page.goto(`${server.url}/inspector/#/event/other/refused-1`);
    const step = page.locator('[data-connection="con_hook"]');
    // (Run alone, the receiver's scripted 500 comes first: one more failed attempt.)
    await step.getByText(/Delivery attempt \d .*failed \(422\)/).waitFor({ timeout: 10_000 });
    await step.getByText(/Delivery attempt \d .*\(redrive\): ok/).waitFor();
    await step.getByText(/Dead letter at .* after \d attempt.*HTTP 422/).waitFor();
    await step.getByText("delivered", { exact: true }).waitFor();
    // One list, in the order things happened: refused, dead-lettered, redriven.
    const lines = await step.locator("ul.sub > li").allTextContents();
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(at(/failed \(422\)/)).toBeLessThan(at(/^Dead letter/));
    expect(at(/^Dead letter/)).toBeLessThan(at(/\(redrive\): ok/));
    await expectAccessible(page, "detail redriven");
    await shot(page, "detail-redriven-desktop-light");
    await page.context().close();
  }, 60_000);

  test("connections: state and lag; pause and resume change the state", async () => {
    const page = await signedIn();
    await page.getByRole("link", { name: "Connections" }).click();
    const card = page.locator('[data-connection="con_archive"]');
    await card.waitFor();
    await card.locator(".badge").getByText("running").waitFor();
    await expectAccessible(page, "connections");
    await shot(page, "connections-desktop-light");
    await card.getByRole("button", { name: "Pause" }).click();
    await card.locator(".badge").getByText("paused").waitFor({ timeout: 5000 });
    await shot(page, "connections-paused-desktop-light");
    await card.getByRole("button", { name: "Resume" }).click();
    await card.locator(".badge").getByText("running").waitFor({ timeout: 5000 });
    await page.context().close();
  }, 60_000);

  test("sources: keys and the last hour's chart", async () => {
    await post("/v1/batch", { batch: [track("s-1"), track("s-2"), { type: "track" }] });
    const page = await signedIn();
    await page.getByRole("link", { name: "Sources" }).click();
    const web = page.locator('[data-source="web"]');
    await web.waitFor();
    await expect(web.textContent()).resolves.toContain("wk_server");
    const chart = web.getByRole("img");
    expect(await chart.getAttribute("aria-label")).toMatch(/[1-9]\d* accepted/);
    await expectAccessible(page, "sources");
    await shot(page, "sources-desktop-light");
    await page.context().close();
  }, 60_000);

  test("every view at phone size and in dark mode", async () => {
    for (const [size, name] of [
      [DESKTOP, "desktop"],
      [PHONE, "phone"],
    ] as const) {
      for (const scheme of ["light", "dark"] as const) {
        if (name === "desktop" && scheme === "light") continue;
        const page = await signedIn(size, scheme);
        await post("/v1/track", track(`${name}-${scheme}`));
        await post("/v1/track", { type: "track", userId: "u" });
        await page.locator(`li.row[data-message-id="${name}-${scheme}"]`).waitFor();
        await page.locator('li.row[data-status="rejected"]').first().waitFor();
        await expectAccessible(page, `live ${name} ${scheme}`);
        await shot(page, `live-${name}-${scheme}`);
        await page.locator(`li.row[data-message-id="${name}-${scheme}"]`).getByRole("link").click();
        await page.locator('[data-connection="con_archive"]').waitFor();
        await expectAccessible(page, `detail ${name} ${scheme}`);
        await shot(page, `detail-${name}-${scheme}`);
        for (const view of ["Connections", "Sources"]) {
          await page.getByRole("link", { name: view }).click();
          await page.getByRole("heading", { name: view }).waitFor();
          await page.waitForLoadState("networkidle");
          await expectAccessible(page, `${view} ${name} ${scheme}`);
          await shot(page, `${view.toLowerCase()}-${name}-${scheme}`);
        }
        await page.context().close();
      }
    }
  }, 120_000);
});
