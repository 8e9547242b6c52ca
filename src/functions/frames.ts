/**
 * The channel between the server and a function host: its stdin and stdout, one JSON
 * batch of messages per line. Not Bun's IPC: a host runs user code, which can write
 * to any of its own file descriptors, and Bun's IPC reader buffers a line without end
 * (600 MB written to it grew the server by 600 MB). This reader holds at most
 * `maxLineBytes`; past that, or on a line that is not JSON, it stops and says so,
 * and the server kills the host.
 */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  maxLineBytes: number,
  onLine: (value: unknown) => void,
  onBroken: (reason: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let parts: Uint8Array[] = [];
  let held = 0;
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (held + piece.length > maxLineBytes)
        return onBroken(`a message over ${maxLineBytes} bytes`);
      let text: string;
      if (parts.length === 0) text = decoder.decode(piece);
      else {
        parts.push(piece);
        text = decoder.decode(concat(parts, held + piece.length));
        parts = [];
        held = 0;
      }
      if (text.length === 0) continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return onBroken("a message that is not JSON");
      }
      onLine(value);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      held += rest.length;
      if (held > maxLineBytes) return onBroken(`a message over ${maxLineBytes} bytes`);
      // The stream may reuse its buffer: keep a copy.
      parts.push(rest.slice());
    }
  }
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One batch as a line of the channel. */
export function frame(batch: unknown[]): string {
  return `${JSON.stringify(batch)}\n`;
}
