import { loadConfig } from "../config/load.ts";

/** The default health URL: the port from $PORT, else the config file, else 8080. */
export function healthUrl(configFile: string, env = process.env): string {
  let port = Number(env.PORT) || 0;
  let host = "127.0.0.1";
  if (!port) {
    try {
      const { config } = loadConfig(configFile, env);
      port = config.server.port;
      if (!["0.0.0.0", "::", ""].includes(config.server.host)) host = config.server.host;
    } catch {
      port = 8080;
    }
  }
  return `http://${host.includes(":") ? `[${host}]` : host}:${port || 8080}/health`;
}

/** `sluice health`: 0 when the server answers 200 within 3 seconds, else 1. */
export async function checkHealth(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    console.log(`${url}: ${res.status}`);
    return res.status === 200 ? 0 : 1;
  } catch (err) {
    console.error(`${url}: ${(err as Error).message}`);
    return 1;
  }
}
