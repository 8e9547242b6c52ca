import pino from "pino";

/** A pino logger that keeps its lines (parsed) in memory, for tests that read them. */
export function memoryLogger(level = "info") {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level },
    { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { logger, lines };
}
