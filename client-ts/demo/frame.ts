/**
 * Coalescing work to animation frames: pointer events arrive faster than the screen refreshes
 * (and faster than it is worth sending actions), so handlers only record what happened and
 * request a frame; the work runs once in that frame with the latest state.
 */

/** Runs `fn` once on the next animation frame after one or more {@link request} calls. */
export class FrameTask {
  private handle: number | null = null;

  constructor(private readonly fn: (time: number) => void) {}

  /** Asks for one run on the next frame (no-op if one is already asked for). */
  request(): void {
    if (this.handle !== null) return;
    this.handle = requestAnimationFrame((time) => {
      this.handle = null;
      this.fn(time);
    });
  }

  /** Whether a run is waiting for its frame. */
  get requested(): boolean {
    return this.handle !== null;
  }

  /** Drops the waiting run, if any. */
  cancel(): void {
    if (this.handle === null) return;
    cancelAnimationFrame(this.handle);
    this.handle = null;
  }
}

/**
 * Calls `fn` with the latest value at most once per `intervalMs` (leading and trailing edges):
 * for presence, which the server rate-limits with everything else a client sends.
 */
export class Throttle<T> {
  private last = -Infinity;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private latest: { value: T } | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly fn: (value: T) => void,
  ) {}

  /** Offers a new value; it is passed on now or when the interval allows. */
  push(value: T): void {
    this.latest = { value };
    if (this.timer !== null) return;
    const wait = this.last + this.intervalMs - performance.now();
    if (wait <= 0) this.fire();
    else this.timer = setTimeout(() => this.fire(), wait);
  }

  private fire(): void {
    this.timer = null;
    const v = this.latest;
    this.latest = null;
    if (v === null) return;
    this.last = performance.now();
    this.fn(v.value);
  }
}
