import { afterEach, expect, test } from "bun:test";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stageFunctionFiles } from "../../src/functions/sandbox/stage-files.ts";

// A function host reads a private copy of its function's folder (SPEC 7: no file
// outside its own function's folder), never the config file or the data dir.

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "sluice-stage-"));
  dirs.push(root);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(root, name, ".."), { recursive: true });
    writeFileSync(join(root, name), content);
  }
  return root;
}

test("a function's folder is copied with what it imports; links out of it are left out", () => {
  const root = tree({
    "fn/main.js": 'import { x } from "./lib/x.js"; export default () => x;',
    "fn/lib/x.js": "export const x = 1;",
    "fn/data.json": "{}",
    "secret.txt": "not for functions",
  });
  symlinkSync(join(root, "secret.txt"), join(root, "fn", "escape.txt"));
  symlinkSync(join(root, "fn", "lib", "x.js"), join(root, "fn", "alias.js"));
  const staged = stageFunctionFiles([{ id: "main", file: join(root, "fn", "main.js") }], {
    exclude: [],
    parent: root,
  });
  const [f] = staged.functions;
  expect(f!.error).toBeUndefined();
  const copy = join(staged.dir, "main");
  expect(f!.path).toBe(join(copy, "main.js"));
  expect(readFileSync(join(copy, "lib", "x.js"), "utf8")).toBe("export const x = 1;");
  expect(existsSync(join(copy, "data.json"))).toBe(true);
  expect(existsSync(join(copy, "escape.txt"))).toBe(false);
  expect(lstatSync(join(copy, "alias.js")).isSymbolicLink()).toBe(true);
  expect(readFileSync(join(copy, "alias.js"), "utf8")).toBe("export const x = 1;");
  expect(staged.unmap(`error in ${join(copy, "main.js")}`)).toBe(
    `error in ${join(root, "fn", "main.js")}`,
  );
  staged.remove();
  expect(existsSync(staged.dir)).toBe(false);
});

test("a function beside the config file gets its own file only", () => {
  const root = tree({ "sluice.yaml": "secret: yes", "tag.js": "export default () => {};" });
  const staged = stageFunctionFiles([{ id: "tag", file: join(root, "tag.js") }], {
    exclude: [join(root, "sluice.yaml")],
    parent: root,
  });
  expect(existsSync(join(staged.dir, "tag", "tag.js"))).toBe(true);
  expect(existsSync(join(staged.dir, "tag", "sluice.yaml"))).toBe(false);
  // The config itself is never a function.
  const config = stageFunctionFiles([{ id: "cfg", file: join(root, "sluice.yaml") }], {
    exclude: [join(root, "sluice.yaml")],
    parent: root,
  });
  expect(config.functions[0]!.error?.message).toContain("is sluice's own config or data");
});

test("the code hash changes with the function's own imports, not with its neighbours", () => {
  const root = tree({
    "fn/a.js": 'import "./shared.js"; export default () => {};',
    "fn/b.js": "export default () => {};",
    "fn/shared.js": "export const s = 1;",
  });
  const stage = () =>
    stageFunctionFiles(
      [
        { id: "a", file: join(root, "fn", "a.js") },
        { id: "b", file: join(root, "fn", "b.js") },
      ],
      { exclude: [], parent: root },
    ).functions.map((f) => f.hash);
  const [a1, b1] = stage();
  writeFileSync(join(root, "fn", "shared.js"), "export const s = 2;");
  const [a2, b2] = stage();
  expect(a2).not.toBe(a1);
  expect(b2).toBe(b1);
});

test("a missing file is a load error naming it", () => {
  const root = tree({});
  const staged = stageFunctionFiles([{ id: "gone", file: join(root, "nope", "gone.js") }], {
    exclude: [],
    parent: root,
  });
  expect(staged.functions[0]!.error?.message).toContain(join(root, "nope"));
});
