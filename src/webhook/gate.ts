// How many admission reviews the server reads, parses and decides at once.
// Past the bound a review waits in line, briefly, with its body still unread
// in the socket (so waiting costs a connection, not memory). Queue rather than
// refuse at once: the API server retries nothing and the webhooks fail closed,
// so a burst (a Deployment scaling up, a node drained) is better answered a
// second late than refused. A flood is refused once the line is full or a
// review has waited longer than it could still be answered in time.
export interface GateOptions {
  /** Reviews in progress at once. */
  maxInFlight: number;
  /** Request bytes in progress at once (declared Content-Length, or the body cap when undeclared). */
  maxBytes: number;
  /** Reviews waiting for room. */
  maxQueued: number;
  /** How long one waits before it is refused. */
  maxWaitMs: number;
}

export type Release = () => void;

interface Waiter {
  bytes: number;
  admit(release: Release | undefined): void;
}

export class Gate {
  private readonly opts: GateOptions;
  private inFlight = 0;
  private bytes = 0;
  private readonly queue: Waiter[] = [];

  constructor(opts: GateOptions) {
    this.opts = opts;
  }

  /** Resolves with a release once there is room for `bytes`; with undefined when refused. */
  enter(bytes: number): Promise<Release | undefined> {
    if (this.queue.length === 0 && this.fits(bytes)) return Promise.resolve(this.take(bytes));
    if (this.queue.length >= this.opts.maxQueued) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter: Waiter = { bytes, admit: (release) => { clearTimeout(timer); resolve(release); } };
      const timer = setTimeout(() => {
        this.queue.splice(this.queue.indexOf(waiter), 1);
        resolve(undefined);
      }, this.opts.maxWaitMs);
      timer.unref();
      this.queue.push(waiter);
    });
  }

  /** Reviews in progress and waiting (tests, benchmarks). */
  load(): { inFlight: number; bytes: number; queued: number } {
    return { inFlight: this.inFlight, bytes: this.bytes, queued: this.queue.length };
  }

  // One review always fits an idle gate, whatever its size: maxBytes bounds concurrency, never admission.
  private fits(bytes: number): boolean {
    return this.inFlight < this.opts.maxInFlight && (this.inFlight === 0 || this.bytes + bytes <= this.opts.maxBytes);
  }

  private take(bytes: number): Release {
    this.inFlight++;
    this.bytes += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
      this.bytes -= bytes;
      // First come, first served: a large review at the head is not overtaken by small ones forever.
      while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) {
        const next = this.queue.shift()!;
        next.admit(this.take(next.bytes));
      }
    };
  }
}
