// A bounded least-recently-used cache of per-image matching states (every image token after the ViT's
// final LayerNorm, and the image embedding), keyed by the SHA-256 of the encoded image bytes: repeated
// re-ranks of the same gallery skip decoding and the image tower. Concurrent lookups of one image (the
// same image twice in a request, or in two requests at once) share a single computation, also with
// capacity 0, which keeps nothing afterwards.

export interface CacheEvents {
  onHit?: () => void;
  onMiss?: () => void;
  /** A lookup that joined a computation already under way. */
  onShared?: () => void;
  onSize?: (entries: number) => void;
}

export class StateCache<V> {
  private readonly entries = new Map<string, V>();
  private readonly pending = new Map<string, Promise<V>>();

  constructor(
    readonly capacity: number,
    private readonly events: CacheEvents = {},
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Forgets every kept value (computations under way still finish, and are kept). */
  clear(): void {
    this.entries.clear();
    this.events.onSize?.(0);
  }

  /** Whether `key` is cached or being computed (a `get` now would not compute it). */
  has(key: string): boolean {
    return this.entries.has(key) || this.pending.has(key);
  }

  /** The cached value, or `compute()`'s (shared with concurrent callers of the same key, kept on success). */
  get(key: string, compute: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key); // re-inserted: most recently used last
      this.entries.set(key, hit);
      this.events.onHit?.();
      return Promise.resolve(hit);
    }
    const inFlight = this.pending.get(key);
    if (inFlight) {
      this.events.onShared?.();
      // Another request's computation can fail for its own reasons (its client left, its deadline):
      // then this one computes for itself.
      return inFlight.catch(() => this.get(key, compute));
    }
    this.events.onMiss?.();
    const p = compute().then(
      (v) => {
        this.pending.delete(key);
        if (this.capacity <= 0) return v;
        this.entries.set(key, v);
        while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
        this.events.onSize?.(this.entries.size);
        return v;
      },
      (e: unknown) => {
        this.pending.delete(key);
        throw e;
      },
    );
    this.pending.set(key, p);
    return p;
  }
}
