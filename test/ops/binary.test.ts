import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exitCode } from "../support/process.ts";
import { BUN } from "../support/server.ts";
import { waitFor } from "../support/wait.ts";

// SPEC 10: `bun build --compile` makes one executable that runs everything, functions
// included. This builds it with the `build` script of package.json (into a temp dir,
// not dist/), then runs it as a user would, in a folder holding its config and a
// function file: init, check, serve, send an event, run a function, health,
// log tail, keys list, stop (SIGTERM, exit 0).

const ROOT = join(import.meta.dir, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "sluice-binary-"));
const binary = join(dir, "sluice");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The package's build script, as npm would run it (sh), writing to `outfile` instead. */
function buildCommand(outfile: string): string[] {
  const script: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts.build;
  expect(script).toMatch(/^bun build --compile .* --outfile dist\/sluice$/);
  const command = script
    .replace(/^bun /, `'${BUN}' `)
    .replace(/--outfile dist\/sluice$/, `--outfile '${outfile}'`);
  return ["sh", "-c", command];
}

async function run(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([binary, ...args], {
    cwd: dir,
    env: { ...process.env, SLUICE_CONFIG: "", PORT: "0", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  return { stdout, stderr, code: await exitCode(proc, 15_000) };
}

test("the compiled binary inits, serves, stores an event, tails the log and stops", async () => {
  const build = Bun.spawn(buildCommand(binary), { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const buildOut = await new Response(build.stderr).text();
  expect({ code: await exitCode(build, 60_000), buildOut }).toEqual({ code: 0, buildOut });

  expect((await run(["--version"])).stdout.trim()).toBe("0.1.0");
  const init = await run(["init"]);
  expect(init.code).toBe(0);
  const serverKey = /server key: +(\S+)/.exec(init.stdout)![1]!;
  // A function, run by the binary's function host (a hidden subcommand of the binary
  // itself, with Bun Workers whose entry point the build script embeds).
  mkdirSync(join(dir, "functions"));
  writeFileSync(
    join(dir, "functions", "tag.ts"),
    // The helper module resolves inside the binary too.
    'import { RetryError } from "sluice/functions";\n' +
      "export default (event: Record<string, unknown>) =>\n" +
      "  ({ ...event, tagged: typeof RetryError === 'function' });\n",
  );
  const config = readFileSync(join(dir, "sluice.yaml"), "utf8").replace(
    "connections: []\nfunctions: []\n",
    `connections:
  - id: con_tag
    source: default
    destination: { type: file, path: ./archive/out.ndjson }
    functions: [tag]
functions:
  - { id: tag, file: ./functions/tag.ts }
`,
  );
  writeFileSync(join(dir, "sluice.yaml"), config);
  const checked = await run(["check"]);
  expect({ code: checked.code, stderr: checked.stderr }).toEqual({ code: 0, stderr: "" });

  const serve = Bun.spawn([binary, "serve"], {
    cwd: dir,
    env: { ...process.env, SLUICE_CONFIG: "", PORT: "0" },
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const reading = (async () => {
    for await (const chunk of serve.stdout as unknown as AsyncIterable<Uint8Array>) {
      out += new TextDecoder().decode(chunk);
    }
  })();
  try {
    const port = await waitFor(
      () => Number(/"port":(\d+)[^\n]*"msg":"sluice started"/.exec(out)?.[1] ?? 0),
      { timeoutMs: 6000, what: () => `"sluice started" in:\n${out}` },
    );
    const url = `http://127.0.0.1:${port}`;
    const res = await fetch(`${url}/v1/track`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-write-key": serverKey },
      body: JSON.stringify({ event: "Binary Smoke", userId: "u1", messageId: "bin-1" }),
    });
    expect(res.status).toBe(200);
    const fn = await fetch(`${url}/api/funcs/con_tag`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-write-key": serverKey },
      body: JSON.stringify({ type: "track", event: "Fn", userId: "u1" }),
    });
    expect(fn.status).toBe(200);
    expect(((await fn.json()) as { events: unknown[] }).events).toEqual([
      { type: "track", event: "Fn", userId: "u1", tagged: true },
    ]);
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
    expect((await fetch(`${url}/openapi.json`)).status).toBe(200);
    // The inspector page is in the binary, bundled at build time (no build step at run time).
    const inspector = await fetch(`${url}/`);
    expect(inspector.url).toEndWith("/inspector/");
    expect(await inspector.text()).toContain('<script type="module" src="/inspector/app.js');
    const appJs = await fetch(`${url}/inspector/app.js`);
    expect(appJs.headers.get("content-type")).toStartWith("text/javascript");
    expect((await appJs.text()).length).toBeGreaterThan(10_000);
    // Jitsu's p.js is embedded: no node_modules beside the binary here.
    const pjs = await fetch(`${url}/p.js`, { headers: { "accept-encoding": "identity" } });
    expect(pjs.headers.get("content-type")).toBe("application/javascript; charset=utf-8");
    expect(await pjs.text()).toBe(
      readFileSync(join(ROOT, "node_modules/@jitsu/js/dist/web/p.js.txt"), "utf8"),
    );
    expect((await run(["health"], { PORT: String(port) })).code).toBe(0);

    const tail = await run(["log", "tail", "--from-start"]);
    expect(tail.code).toBe(0);
    const events = tail.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      event: "Binary Smoke",
      messageId: "bin-1",
      sourceId: "default",
    });

    const keys = await run(["keys", "list"]);
    expect(keys.code).toBe(0);
    expect(keys.stdout).toContain("server");
  } finally {
    serve.kill("SIGTERM");
    expect(await exitCode(serve, 10_000)).toBe(0);
  }
  await reading;
  expect(out).toContain('"msg":"sluice stopped"');
}, 90_000);
