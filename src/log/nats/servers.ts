/** `host:port` of a NATS server URL, without user, password or token (for logs, `/ready`, `sluice check`). */
export function redactedServer(server: string): string {
  try {
    const u = new URL(server.includes("://") ? server : `nats://${server}`);
    return `${u.hostname}:${u.port || "4222"}`;
  } catch {
    return "(unparsable server)";
  }
}

/** Whether `server` is a URL the NATS client takes: nats://, tls://, ws(s):// or a bare host:port. */
export function validNatsServer(server: string): boolean {
  try {
    const u = new URL(server.includes("://") ? server : `nats://${server}`);
    return ["nats:", "tls:", "ws:", "wss:"].includes(u.protocol) && u.hostname !== "";
  } catch {
    return false;
  }
}
