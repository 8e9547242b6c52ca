/**
 * Bundles the inspector page (app/main.tsx and app/styles.css) with Bun.build and
 * writes `{"js","css"}` as JSON to stdout. Run at build time by the macro in
 * bundle.ts, so the compiled binary carries the page and nothing is built at run time.
 */
import { join } from "node:path";

const dir = join(import.meta.dir, "app");
const result = await Bun.build({
  entrypoints: [join(dir, "main.tsx")],
  target: "browser",
  format: "esm",
  minify: true,
  define: { "process.env.NODE_ENV": '"production"' },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
const js = await result.outputs.find((o) => o.kind === "entry-point")!.text();
const css = await Bun.file(join(dir, "styles.css")).text();
process.stdout.write(JSON.stringify({ js, css }));
