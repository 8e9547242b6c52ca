import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
/** Screenshots land here (gitignored), one PNG per view, size and theme. */
export const ARTIFACTS = join(import.meta.dir, "..", "..", "test-artifacts", "inspector");
const AXE = join(import.meta.dir, "..", "..", "node_modules", "axe-core", "axe.min.js");

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** Whether Chromium is installed (scripts/pretest.sh installs it when it can). */
export const haveChromium = await Bun.file(CHROMIUM).exists();
if (!haveChromium) {
  console.warn(
    `${CHROMIUM} is missing: install Debian's chromium to run the inspector browser tests`,
  );
}

export function launch(): Promise<Browser> {
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
 * A page at the given size and colour scheme. CSP is bypassed only so that the test
 * can inject axe-core (the page's own policy forbids inline scripts).
 */
export async function openPage(
  browser: Browser,
  size: { width: number; height: number },
  colorScheme: "light" | "dark" = "light",
): Promise<Page> {
  const context = await browser.newContext({ viewport: size, colorScheme, bypassCSP: true });
  return context.newPage();
}

/** Saves a full-page screenshot as test-artifacts/inspector/<name>.png. */
export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Accessibility violations (axe-core, WCAG 2 A and AA) of the page as it is now. */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    // Runs in the page: its globals are not in this (server-side) program's types.
    // biome-ignore lint/suspicious/noExplicitAny: axe is injected at run time
    const g = globalThis as any;
    const result = await g.axe.run(g.document, {
      runOnly: {
        type: "tag",
        values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
      },
    });
    return result.violations.map(
      (v: { id: string; help: string; nodes: { target: string[] }[] }) =>
        `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`,
    );
  });
  return violations as string[];
}
