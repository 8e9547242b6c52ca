import { configPath, loadConfig } from "../config/load.ts";
import { UsageError } from "./command.ts";
import { usageOf } from "./help.ts";
import { tailLog, verifyLog } from "./log.ts";

/** `sluice log tail`: stored events as NDJSON; with `follow`, until SIGINT/SIGTERM. */
export async function tail(opts: {
  config?: string;
  "from-start"?: boolean;
  follow?: boolean;
  source?: string;
  n?: string;
}): Promise<number> {
  const lines = count(opts.n ?? "10");
  const { config } = loadConfig(configPath(opts.config).file);
  const controller = new AbortController();
  process.on("SIGINT", () => controller.abort());
  process.on("SIGTERM", () => controller.abort());
  if (config.log.backend === "nats") {
    const { tailNatsLog } = await import("./log-nats.ts");
    const { natsLogOptions } = await import("../log/nats/options.ts");
    await tailNatsLog({
      nats: natsLogOptions(config.log),
      fromStart: opts["from-start"] === true,
      follow: opts.follow === true,
      source: opts.source,
      lines,
      write: (line) => process.stdout.write(`${line}\n`),
      signal: controller.signal,
    });
    return 0;
  }
  await tailLog({
    dataDir: config.server.dataDir,
    fromStart: opts["from-start"] === true,
    follow: opts.follow === true,
    source: opts.source,
    lines,
    write: (line) => process.stdout.write(`${line}\n`),
    warn: (c) =>
      console.error(
        `segment ${c.segment} offset ${c.offset}: ${c.reason}, ${c.bytes} bytes skipped (corrupt record)`,
      ),
    signal: controller.signal,
  });
  return 0;
}

/**
 * `sluice log verify`: every record's checksum (the file log), or every message of the
 * stream (`log.backend: nats`: see `verifyNatsLog`); 1 when one is bad.
 */
export async function verify(opts: { config?: string }): Promise<number> {
  const { config } = loadConfig(configPath(opts.config).file);
  if (config.log.backend === "nats") {
    const { verifyNatsLog } = await import("./log-nats.ts");
    const { natsLogOptions } = await import("../log/nats/options.ts");
    const nats = await verifyNatsLog(natsLogOptions(config.log));
    for (const p of nats.problems) console.error(`stream ${nats.stream} seq ${p.seq}: ${p.reason}`);
    if (nats.incomplete) console.error(`stream ${nats.stream}: incomplete: ${nats.incomplete}`);
    const verdict = [
      ...(nats.problems.length > 0 ? [`${nats.problems.length} bad`] : []),
      ...(nats.incomplete ? ["incomplete"] : []),
    ];
    console.log(
      `stream ${nats.stream}: ${nats.messages} message(s), ${nats.bytes} bytes: ` +
        (verdict.length === 0 ? "ok" : verdict.join(", ")),
    );
    return verdict.length === 0 ? 0 : 1;
  }
  const report = verifyLog(config.server.dataDir);
  for (const p of report.problems) {
    console.error(`segment ${p.segment} offset ${p.offset}: ${p.reason}`);
  }
  console.log(
    `${report.segments} segment(s), ${report.records} record(s), ${report.bytes} bytes: ` +
      (report.problems.length === 0 ? "ok" : `${report.problems.length} bad`),
  );
  return report.problems.length === 0 ? 0 : 1;
}

/** A non-negative whole number from the command line; a usage error otherwise. */
function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || value.trim() === "") {
    throw new UsageError(`-n expects a whole number, got ${value}`, usageOf(["log", "tail"]));
  }
  return n;
}
