import { resolve } from "node:path";

/** Where the config lives: `--config`, else `SLUICE_CONFIG`, else `./sluice.yaml`. */
export function configPath(
  flag: string | undefined,
  env = process.env,
): {
  file: string;
  explicit: boolean;
} {
  // An empty variable counts as unset, as for the other overrides.
  const given = flag ?? (env.SLUICE_CONFIG || undefined);
  return { file: resolve(given ?? "sluice.yaml"), explicit: given !== undefined };
}
