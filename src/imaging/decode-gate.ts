// Keeps CPU-heavy preprocessing (image decode + resize) out of the way of running inferences.
//
// ONNX Runtime's intra-op threads meet at a barrier after every parallel operator, so a decode that
// takes a core away from one of them stalls all of them (on 2 cores a decode overlapping a batch cost
// that batch several times its own CPU time: docs/performance.md). Decodes therefore start when no inference runs on
// the CPU, and right away once they have waited `maxHoldMs` (so a busy text tower cannot starve
// images). Decodes already started are not interrupted.

export class DecodeGate {
  private running = 0;
  private waiters: (() => void)[] = [];

  constructor(private readonly maxHoldMs: number) {}

  /** Runs one inference, holding the gate shut meanwhile. */
  async during<T>(run: () => Promise<T>): Promise<T> {
    this.running++;
    try {
      return await run();
    } finally {
      if (--this.running === 0) this.open();
    }
  }

  /** Resolves when no inference runs, or after maxHoldMs. */
  clear(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== go);
        resolve();
      }, this.maxHoldMs);
      const go = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(go);
    });
  }

  private open(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
