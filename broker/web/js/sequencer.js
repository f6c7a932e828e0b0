// Release inbox events strictly in cursor order, each exactly once (pure logic, no I/O).
//
// An inbox is numbered 1, 2, 3, ... without gaps. Events arrive live and from `sync` pages, so
// they can arrive twice or out of order. The sequencer remembers the highest cursor processed in
// order, drops what is at or below it, buffers what is ahead of it, and says when a gap has stayed
// open long enough that a `sync` should fill it. Times are passed in (milliseconds).

export const GAP_TIMEOUT_MS = 300;

export class Sequencer {
  constructor({ processed = 0, gapTimeout = GAP_TIMEOUT_MS } = {}) {
    if (!Number.isInteger(processed) || processed < 0) throw new RangeError(`bad cursor ${processed}`);
    this.processed = processed;
    this.gapTimeout = gapTimeout;
    this.buffer = new Map();
    this.gapSince = null;
  }

  get hasGap() {
    return this.buffer.size > 0;
  }

  get gapDeadline() {
    return this.gapSince === null ? null : this.gapSince + this.gapTimeout;
  }

  /** Take the item at `cursor`; return every item now ready, in cursor order (maybe none). */
  offer(cursor, item, now) {
    if (cursor <= this.processed || this.buffer.has(cursor)) return [];
    if (cursor > this.processed + 1) {
      if (this.buffer.size === 0) this.gapSince = now;
      this.buffer.set(cursor, item);
      return [];
    }
    const ready = [item];
    this.processed = cursor;
    while (this.buffer.has(this.processed + 1)) {
      this.processed += 1;
      ready.push(this.buffer.get(this.processed));
      this.buffer.delete(this.processed);
    }
    // progress was made: whatever gap is left is measured from now
    this.gapSince = this.buffer.size ? now : null;
    return ready;
  }

  /** Whether a gap has stayed open for the gap timeout, so a `sync` should fill it. */
  gapDue(now) {
    const deadline = this.gapDeadline;
    return deadline !== null && now >= deadline;
  }

  /** Everything up to `cursor` is gone (the server pruned it): count it as processed. */
  skipTo(cursor) {
    if (!Number.isInteger(cursor) || cursor <= this.processed) return;
    this.processed = cursor;
    for (const c of [...this.buffer.keys()]) if (c <= cursor) this.buffer.delete(c);
    if (this.buffer.size === 0) this.gapSince = null;
  }

  /** A `sync` was just sent: give it the gap timeout again before another one is due. */
  restartGapClock(now) {
    if (this.buffer.size) this.gapSince = now;
  }
}
