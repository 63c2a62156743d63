// A micro-batcher for one model tower: concurrent requests' items are queued and run together.
//
// A tower runs as many batches at once as it has lanes (sessions): usually one, ONNX Runtime
// spreading each run over all its threads. When a lane is free, a batch starts as soon as it is
// full or its oldest item has waited `maxWaitMs`; while batches run, arrivals queue up and form the
// next. Under concurrent load (`settleMs`) a lane lets the clients just answered send their next
// items before it starts again, instead of splitting them into half-size batches (see `settle`). The queue is bounded
// (OverloadedError → 503 + Retry-After), every item carries a deadline (DeadlineError → 504), and
// items whose client went away are dropped before they cost any inference. A request may pass a
// timing record, which the batcher fills with its items' longest queue wait and batch run.

import {
  ClientGoneError,
  DeadlineError,
  InferenceError,
  OverloadedError,
  PayloadTooLargeError,
} from '../core/errors.js';

export interface BatcherOptions<I, O> {
  name: string;
  maxBatch: number;
  maxWaitMs: number;
  /** Batches that may run at once, each on its own lane (session); default 1. */
  lanes?: number;
  /** How long an idle tower waits for reserved items still being prepared to fill the batch. */
  fillWaitMs?: number;
  /**
   * After a batch of several items, how long the tower waits for the next arrival (ms, 0 = not at
   * all) while fewer items are queued than were in play when it ended; never longer in all than a
   * quarter of a batch's run time.
   */
  settleMs?: number;
  maxQueue: number;
  /** Runs one batch on lane 0 … lanes − 1 (no other batch uses that lane meanwhile); one output per input, in order. */
  run: (inputs: I[], lane: number) => Promise<O[]>;
  /**
   * Groups similar items (e.g. texts by length, so that padding is small): a batch is the oldest
   * waiting item plus the queued items closest to it by this key. Without it batches are FIFO.
   */
  groupKey?: (input: I) => number;
  onBatch?: (size: number, runMs: number) => void;
  onQueueDepth?: (depth: number) => void;
  onDropped?: (reason: 'deadline' | 'client_gone' | 'queue_full') => void;
}

/** An AbortSignal, or anything else that says whether the client went away. */
export interface Departure {
  readonly aborted: boolean;
}

/** One per request, shared by its items: the longest of their queue waits and of their batches' runs (ms). */
export interface BatchTiming {
  queueMs: number;
  inferenceMs: number;
}

export interface SubmitOptions {
  /** Epoch ms after which the item is refused with 504 instead of being run. */
  deadline: number;
  /** Checked before each run: items of a client that went away are dropped. */
  signal?: Departure;
  /** Filled in as the items run (response timing headers). */
  timing?: BatchTiming;
}

/** Places held in a batcher's queue for items still being prepared (`MicroBatcher.reserve`). */
export interface Reservation<I, O> {
  /** Queues prepared items, each in one of the held places. */
  enqueue(inputs: I[]): Promise<O>[];
  /** Gives back `n` unused places (all that are left when omitted). */
  release(n?: number): void;
}

interface Entry<I, O> {
  input: I;
  /** performance.now() when queued */
  enqueuedAt: number;
  deadline: number;
  signal?: Departure;
  timing?: BatchTiming;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
  timer?: NodeJS.Timeout;
}

export class MicroBatcher<I, O> {
  private queue: Entry<I, O>[] = [];
  /** Items reserved but still being prepared (fetched, decoded) before they are queued. */
  private reserved = 0;
  /** Moving average of a batch's run time, for Retry-After. */
  private batchMs = 100;
  /** Lanes with no batch running, lowest first. */
  private freeLanes: number[];
  private waitTimer: NodeJS.Timeout | undefined;
  /** performance.now() of the last arrival, and per lane of its last batch's end. */
  private arrivedAt = -Infinity;
  private endedAt: number[];
  /** Per lane, the items in play when its last batch ended: its own and its share of those queued. */
  private inPlay: number[];
  /** Items in the batches running now. */
  private runningItems = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: BatcherOptions<I, O>) {
    this.freeLanes = Array.from({ length: this.lanes }, (_, i) => i);
    this.endedAt = this.freeLanes.map(() => -Infinity);
    this.inPlay = this.freeLanes.map(() => 0);
  }

  private get lanes(): number {
    return Math.max(1, this.options.lanes ?? 1);
  }

  private get running(): boolean {
    return this.freeLanes.length < this.lanes;
  }

  get maxBatch(): number {
    return this.options.maxBatch;
  }

  get depth(): number {
    return this.queue.length;
  }

  /** Seconds a client should wait before retrying when the queue is full: the time to work the queue off. */
  private retryAfter(): number {
    const batches = (this.queue.length + this.reserved) / this.options.maxBatch;
    return Math.max(1, Math.ceil((batches * this.batchMs) / this.lanes / 1000));
  }

  /**
   * Throws OverloadedError unless `n` more items fit (queued plus reserved-and-preparing), or 413
   * when `n` is more than the whole queue holds: no retry could ever make room for it.
   */
  private checkRoom(n: number): void {
    if (n > this.options.maxQueue) {
      throw new PayloadTooLargeError(
        `${n} items in one request, more than the ${this.options.name} queue holds (${this.options.maxQueue}): send fewer at a time or raise the queue limit`,
        undefined,
        'too_many_items',
      );
    }
    if (this.queue.length + this.reserved + n > this.options.maxQueue) {
      this.options.onDropped?.('queue_full');
      throw new OverloadedError(
        `the ${this.options.name} queue is full (${this.queue.length + this.reserved} waiting); retry later`,
        this.retryAfter(),
      );
    }
  }

  /**
   * Reserves places for `n` items that need preparing before they can be queued (image decoding),
   * so that a full pipeline refuses new work at once instead of after the preparation, and a request
   * never half-enters. Each prepared item takes one place; give back the places of items that will
   * not come (a failed decode, a cache hit) as soon as that is known: an idle tower waits for
   * reserved items (fillWaitMs).
   */
  reserve(n: number, options: SubmitOptions): Reservation<I, O> {
    this.checkRoom(n);
    this.reserved += n;
    let left = n;
    return {
      enqueue: (inputs) => {
        // Beyond its places (an image another request was computing, and failed), it needs room like any other.
        if (inputs.length > left) this.checkRoom(inputs.length - left);
        const own = Math.min(inputs.length, left);
        left -= own;
        this.reserved -= own;
        return this.enqueueAll(inputs, options);
      },
      release: (k = left) => {
        k = Math.min(k, left);
        if (k <= 0) return;
        left -= k;
        this.reserved -= k;
        this.schedule(); // a batch may have been waiting for these
      },
    };
  }

  /** Queues items atomically: all of them are accepted or none (a request never half-enters). */
  submitAll(inputs: I[], options: SubmitOptions): Promise<O>[] {
    this.checkRoom(inputs.length);
    return this.enqueueAll(inputs, options);
  }

  private enqueueAll(inputs: I[], options: SubmitOptions): Promise<O>[] {
    const promises = inputs.map((input) => this.enqueue(input, options));
    this.arrivedAt = performance.now();
    this.schedule();
    return promises;
  }

  private enqueue(input: I, options: SubmitOptions): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const entry: Entry<I, O> = {
        input,
        enqueuedAt: performance.now(),
        deadline: options.deadline,
        signal: options.signal,
        timing: options.timing,
        resolve,
        reject,
      };
      const wait = options.deadline - Date.now();
      if (wait <= 0) {
        // Its fetch or decode outlasted the deadline: an idle tower would otherwise run it at once.
        this.options.onDropped?.('deadline');
        reject(new DeadlineError(`past the request deadline before it reached the ${this.options.name} queue`));
        return;
      }
      entry.timer = setTimeout(() => this.expire(entry), wait);
      this.queue.push(entry);
      this.options.onQueueDepth?.(this.queue.length);
    });
  }

  private expire(entry: Entry<I, O>): void {
    const i = this.queue.indexOf(entry);
    if (i < 0) return; // already taken into a batch
    this.queue.splice(i, 1);
    this.options.onQueueDepth?.(this.queue.length);
    this.options.onDropped?.('deadline');
    entry.reject(
      new DeadlineError(
        `waited ${Math.round(performance.now() - entry.enqueuedAt)} ms in the ${this.options.name} queue, past the request deadline`,
      ),
    );
  }

  /** Starts a batch if one is due; `split`: the rest of a batch just started, due at once on a free lane. */
  private schedule(split = false): void {
    if (this.freeLanes.length === 0 || this.queue.length === 0) {
      if (!this.running && this.queue.length === 0) this.notifyIdle();
      return;
    }
    if (!split) {
      const settling = this.settle(this.freeLanes[0]!);
      if (settling > 0) return this.wakeIn(settling);
      const waited = performance.now() - this.queue[0]!.enqueuedAt;
      // Items reserved and still being prepared would fill this batch: give them fillWaitMs.
      const hold =
        this.reserved > 0 ? Math.max(this.options.maxWaitMs, this.options.fillWaitMs ?? 0) : this.options.maxWaitMs;
      if (this.queue.length < this.options.maxBatch && waited < hold) return this.wakeIn(hold - waited);
    }
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    void this.runBatch(); // takes its items and a lane before its first await
    this.schedule(true); // what it left (its lane's share) goes to another free lane
  }

  /** Schedules again after `ms`, unless a wake-up is already set. */
  private wakeIn(ms: number): void {
    this.waitTimer ??= setTimeout(() => {
      this.waitTimer = undefined;
      this.schedule();
    }, ms);
  }

  /**
   * Ms to hold the next batch, 0 for none. With N clients in a closed loop, starting again at once
   * runs the items that queued during the last batch while its clients are still being answered,
   * and the tower settles into batches of N/2 (slower per item: docs/performance.md) with the
   * replies' CPU work competing with inference. Holding while the answered
   * clients' next items keep arriving, up to as many items as were in play, restores full batches
   * and moves that work into the gap. A batch of one (a lone client) holds nothing.
   */
  private settle(lane: number): number {
    const gap = this.options.settleMs ?? 0;
    const inPlay = this.inPlay[lane]!;
    if (gap <= 0 || inPlay < 2 || this.queue.length >= Math.min(inPlay, this.options.maxBatch)) return 0;
    const now = performance.now();
    const endedAt = this.endedAt[lane]!;
    // The answered clients need the gap to reply at all, so it counts from the end or the last arrival.
    const left = Math.min(
      gap - (now - Math.max(this.arrivedAt, endedAt)),
      Math.max(gap, this.batchMs / 4) - (now - endedAt),
    );
    return left > 0 ? Math.ceil(left) : 0;
  }

  /**
   * The most items a batch on `lane` takes: maxBatch, and with several lanes no more than an equal
   * share of the work in sight (queued plus running) or what the lane had in play last time, so that
   * the lanes split a large request between them and closed-loop clients spread over the lanes
   * instead of piling onto whichever lane is free first.
   */
  private limit(lane: number, queued: number): number {
    const { maxBatch } = this.options;
    if (this.lanes === 1) return maxBatch;
    return Math.min(maxBatch, Math.max(1, Math.ceil((queued + this.runningItems) / this.lanes), this.inPlay[lane]!));
  }

  private take(lane: number): Entry<I, O>[] {
    const live: Entry<I, O>[] = [];
    for (const e of this.queue) {
      if (e.signal?.aborted) {
        clearTimeout(e.timer);
        this.options.onDropped?.('client_gone');
        e.reject(new ClientGoneError());
      } else live.push(e);
    }
    let batch: Entry<I, O>[];
    const { groupKey } = this.options;
    const maxBatch = this.limit(lane, live.length);
    if (groupKey && live.length > maxBatch) {
      // The oldest item always goes (no starvation); the rest are its nearest neighbours by key.
      const anchor = groupKey(live[0]!.input);
      const rest = live.slice(1).map((e, age) => ({ e, age, d: Math.abs(groupKey(e.input) - anchor) }));
      rest.sort((a, b) => a.d - b.d || a.age - b.age);
      const chosen = new Set([live[0]!, ...rest.slice(0, maxBatch - 1).map((r) => r.e)]);
      batch = live.filter((e) => chosen.has(e));
      this.queue = live.filter((e) => !chosen.has(e));
    } else {
      batch = live.slice(0, maxBatch);
      this.queue = live.slice(maxBatch);
    }
    for (const e of batch) clearTimeout(e.timer);
    this.options.onQueueDepth?.(this.queue.length);
    return batch;
  }

  private async runBatch(): Promise<void> {
    const lane = this.freeLanes.shift()!;
    const batch = this.take(lane);
    this.runningItems += batch.length;
    if (batch.length > 0) {
      const started = performance.now();
      try {
        const outputs = await this.options.run(
          batch.map((e) => e.input),
          lane,
        );
        if (outputs.length !== batch.length)
          throw new Error(`batch returned ${outputs.length} outputs for ${batch.length} inputs`);
        const ms = performance.now() - started;
        this.batchMs = 0.8 * this.batchMs + 0.2 * ms;
        this.options.onBatch?.(batch.length, ms);
        for (let i = 0; i < batch.length; i++) {
          const e = batch[i]!;
          const timing = e.timing;
          if (timing) {
            const queued = started - e.enqueuedAt;
            if (queued > timing.queueMs) timing.queueMs = queued;
            if (ms > timing.inferenceMs) timing.inferenceMs = ms;
          }
          e.resolve(outputs[i]!);
        }
      } catch (e) {
        const err = new InferenceError(
          `inference failed for a batch of ${batch.length} on ${this.options.name}: ${(e as Error).message}`,
          { cause: e },
        );
        for (const entry of batch) entry.reject(err);
      }
    }
    this.freeLanes.push(lane);
    this.freeLanes.sort((a, b) => a - b);
    this.runningItems -= batch.length;
    this.endedAt[lane] = performance.now();
    this.inPlay[lane] = batch.length + Math.ceil(this.queue.length / this.lanes);
    this.schedule();
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once nothing is queued or running (graceful shutdown). */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
