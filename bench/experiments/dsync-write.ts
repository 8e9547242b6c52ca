/**
 * What one group commit costs in CPU, by thread (issue 11): N appends of one framed
 * single event (~700 B) into an O_DSYNC file, one after the other, as the log writes
 * a group of one request, through each way Bun offers. At the "half max" row nearly
 * every request is its own group commit, so this is a floor of its CPU per request.
 *
 *   bun bench/experiments/dsync-write.ts [DIR] [--count N] [--modes write,writev,cb,cbv,sync,syncv]
 *
 * write / writev: `FileHandle.write` / `.writev` of node:fs/promises (what the log
 * uses); cb / cbv: the callback `fs.write` / `fs.writev`; sync / syncv: `writeSync` /
 * `writevSync` on the event loop. Per mode: wall time per append and each thread's CPU
 * (user + system from /proc/self/task, 10 ms ticks) per append. The file is written
 * with zeros and synced first, as the log's zeros ahead leave a segment's blocks.
 */
import {
  closeSync,
  write as fsWrite,
  writev as fsWritev,
  fsyncSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
  writevSync,
} from "node:fs";
import { constants, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const base = argv[0] && !argv[0].startsWith("--") ? argv[0] : tmpdir();
const count = Number(opt("count") ?? 2000);
const modes = (opt("modes") ?? "write,sync,writev,syncv,cb,cbv").split(",");

/** CPU milliseconds (user + system) of each thread of this process, by "tid name". */
function threads(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(`${tid} ${name}`, (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

const dir = mkdtempSync(join(base, "dsync-write-"));
try {
  const buf = new Uint8Array(700).fill(0x41);
  const tail = buf.subarray(0, 100);
  for (const mode of modes) {
    const path = join(dir, `${mode}.seg`);
    // Written blocks, as the log's zeros ahead leave them: a data write, no metadata.
    writeFileSync(path, new Uint8Array(count * buf.length));
    const zeros = openSync(path, "r+");
    fsyncSync(zeros);
    closeSync(zeros);
    const h = await open(path, constants.O_RDWR | constants.O_DSYNC);
    const fd = h.fd;
    const done = (resolve: () => void, reject: (e: Error) => void) => (e: Error | null) =>
      e ? reject(e) : resolve();
    const before = threads();
    const started = performance.now();
    let pos = 0;
    for (let i = 0; i < count; i++) {
      if (mode === "write") await h.write(buf, 0, buf.length, pos);
      else if (mode === "writev") await h.writev([buf, tail], pos);
      else if (mode === "sync") writeSync(fd, buf, 0, buf.length, pos);
      else if (mode === "syncv") writevSync(fd, [buf, tail], pos);
      else if (mode === "cb")
        await new Promise<void>((res, rej) => fsWrite(fd, buf, 0, buf.length, pos, done(res, rej)));
      else if (mode === "cbv")
        await new Promise<void>((res, rej) => fsWritev(fd, [buf, tail], pos, done(res, rej)));
      else throw new Error(`unknown mode ${mode}`);
      pos += buf.length;
    }
    const wall = performance.now() - started;
    const after = threads();
    await h.close();
    const rows = [...after]
      .map(([t, ms]) => [t, ms - (before.get(t) ?? 0)] as const)
      .filter(([, ms]) => ms > 0);
    const total = rows.reduce((n, [, ms]) => n + ms, 0);
    console.log(
      `${mode}: ${((wall * 1000) / count).toFixed(0)} µs wall per append, CPU ` +
        `${((total * 1000) / count).toFixed(0)} µs per append: ` +
        rows
          .map(
            ([t, ms]) => `${t.split(" ").slice(1).join(" ")} ${((ms * 1000) / count).toFixed(0)}`,
          )
          .join(", "),
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
