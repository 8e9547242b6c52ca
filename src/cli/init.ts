import { dirname } from "node:path";
import { type InitialConfig, writeInitialConfig } from "../config/init.ts";
import { configPath } from "../config/load.ts";
import { CliError } from "./command.ts";

/** `sluice init`: a starter config with fresh keys, printed once; never overwrites. */
export function init(configFlag: string | undefined): number {
  const { file } = configPath(configFlag);
  printNewKeys(file, createConfigFile(file));
  return 0;
}

/**
 * Writes a starter config to `file`. The reasons it cannot (it exists, its folder is
 * missing or not writable) are said in one line, not as an errno stack.
 */
export function createConfigFile(file: string): InitialConfig {
  try {
    return writeInitialConfig(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const folder = dirname(file);
    const why: Record<string, string> = {
      EEXIST: `${file} exists; not overwriting it`,
      ENOENT: `cannot create ${file}: the folder ${folder} does not exist (create it first: mkdir -p ${folder})`,
      ENOTDIR: `cannot create ${file}: ${folder} is not a folder`,
      EACCES: `cannot create ${file}: no permission to write in ${folder}`,
      EPERM: `cannot create ${file}: no permission to write in ${folder}`,
      EROFS: `cannot create ${file}: ${folder} is on a read-only file system`,
      EISDIR: `cannot create ${file}: it is a folder`,
    };
    if (code && why[code]) throw new CliError(why[code]!);
    throw err;
  }
}

/** The keys of a new config, shown once: the file keeps only their hashes. */
export function printNewKeys(file: string, keys: { browserKey: string; serverKey: string }) {
  console.log(`Created ${file} with one source and two write keys.
These keys are shown only now (the file keeps only their hashes):
  browser key: ${keys.browserKey}
  server key:  ${keys.serverKey}
`);
}
