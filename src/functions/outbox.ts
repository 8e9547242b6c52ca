/**
 * Messages for one channel (an IPC pipe, a worker), written in one batch per turn of
 * the event loop however many there are: each IPC write costs far more than its size.
 */
export class Outbox<T> {
  private queue: T[] = [];

  /** `write` sends one batch; it may throw (a closing channel), which `onError` hears. */
  constructor(
    private readonly write: (batch: T[]) => void,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  push(message: T): void {
    this.queue.push(message);
    if (this.queue.length === 1) queueMicrotask(this.flush);
  }

  /** Drops what is queued (the channel is gone). */
  clear(): void {
    this.queue = [];
  }

  private readonly flush = (): void => {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    try {
      this.write(batch);
    } catch (err) {
      this.onError(err);
    }
  };
}
