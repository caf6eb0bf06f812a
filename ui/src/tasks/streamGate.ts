// Browsers open at most six HTTP/1.1 connections per origin, and every open WatchTask stream
// holds one. The gate keeps live streams to a few, leaving connections for ordinary calls;
// waiting watchers get a slot as soon as a watched task ends. Lower priority values go first.
export class StreamGate {
  private active = 0;
  private waiting: { priority: number; grant: () => void }[] = [];

  constructor(readonly limit: number) {}

  /** Resolves with a release function once a slot is free; rejects if `signal` aborts first. */
  acquire(priority: number, signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.active -= 1;
        this.next();
      };
      const entry = {
        priority,
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          this.active += 1;
          resolve(release);
        },
      };
      const onAbort = () => {
        this.waiting = this.waiting.filter((item) => item !== entry);
        reject(signal?.reason ?? new DOMException("aborted", "AbortError"));
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(entry);
      this.waiting.sort((a, b) => a.priority - b.priority);
      this.next();
    });
  }

  get inUse(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  private next(): void {
    while (this.active < this.limit && this.waiting.length > 0) this.waiting.shift()?.grant();
  }
}

export const watchGate = new StreamGate(4);
