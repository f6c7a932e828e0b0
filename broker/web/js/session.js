// The client side of the mqchat protocol as a state machine without I/O (docs/protocol.md,
// "Semantics"); the same rules as the Python SDK's client_sdk/session.py.
//
// It is fed what happens on the connection (connected, inbox subscribed, a payload arrived, time
// passed, the user wants to send) and answers with effects: the commands to publish and the
// events to hand to the app, in order.
//
// - after every connect and inbox SUBACK: `sync` from the processed cursor, following the pages
//   (`more`) to the end; then resend every unanswered `send`, with its original command id;
// - sequenced events (live or from sync pages) are released strictly in cursor order, once; a gap
//   that stays open for the gap timeout triggers a `sync` (never two at a time);
// - `delivered` receipts for messages from other users, one command per batch;
// - `sent` and `error` answers settle the outbox; `rate_limited` and `busy` only defer a send.

import {
  TRANSIENT_CODES,
  cursorOf,
  isReadableSequenced,
  newId,
  receiptCommands,
  outgoingCommand,
  syncCommand,
  typingCommand,
} from "./protocol.js";
import { Sequencer } from "./sequencer.js";

export const SYNC_TIMEOUT_MS = 15000;
export const SYNC_RETRY_MS = 1000;
export const RESEND_DELAY_MS = 1000;
const REMEMBERED_SYNCS = 64;

function effects() {
  return { commands: [], events: [], cursorAdvanced: false, synced: false };
}

function merge(into, other) {
  into.commands.push(...other.commands);
  into.events.push(...other.events);
  into.cursorAdvanced = into.cursorAdvanced || other.cursorAdvanced;
  into.synced = into.synced || other.synced;
  return into;
}

/** An outbox entry with only the fields it may have (it is kept across reloads). */
function outgoing({ id, to, text, replyTo, forward }) {
  const o = { id, to, text };
  if (typeof replyTo === "string") o.replyTo = replyTo;
  if (typeof forward === "string") o.forward = forward;
  return o;
}

export class Session {
  /**
   * @param user the logged-in user
   * @param cursor the highest inbox cursor already processed (kept by the app)
   * @param outbox sends not yet answered by `sent`: [{id, to, text, replyTo?, forward?}], in order
   *   (`replyTo`: the message a reply answers; `forward`: the message a forward sends on)
   */
  constructor({ user, cursor = 0, outbox = [], newCommandId = newId, gapTimeout } = {}) {
    this.user = user;
    this.newCommandId = newCommandId;
    this.sequencer = new Sequencer({ processed: cursor, gapTimeout });
    this.outbox = new Map(outbox.map((o) => [o.id, outgoing(o)]));
    this.connected = false;
    this.subscribed = false;
    this.synced = false;
    this.activeSync = null;
    this.activeAfter = 0;
    this.syncDeadline = 0;
    this.retryAt = null;
    this.throttled = [];
    this.resendAt = null;
    this.mySyncs = [];
  }

  get cursor() {
    return this.sequencer.processed;
  }

  /** Unanswered sends, in order (to keep across a reload). */
  pending() {
    return [...this.outbox.values()];
  }

  // ---------------------------------------------------------------- connection
  onConnected() {
    this.resetConnection();
    this.connected = true;
  }

  onDisconnected() {
    this.resetConnection();
  }

  onSubscribed(now) {
    if (!this.connected) return effects();
    this.subscribed = true;
    return this.startSync(now, 0);
  }

  onTick(now) {
    if (!this.subscribed) return effects();
    if (this.activeSync !== null) {
      return now < this.syncDeadline ? effects() : this.startSync(now, 0);
    }
    if (this.retryAt !== null && now >= this.retryAt) return this.startSync(now, 0);
    if (this.resendAt !== null && now >= this.resendAt && this.synced) return this.resendThrottled();
    if (this.sequencer.gapDue(now)) return this.startSync(now, 0);
    return effects();
  }

  // ---------------------------------------------------------------- from the server
  /** A decoded JSON payload arrived on the inbox topic. */
  onInbox(payload, now) {
    if (payload === null || typeof payload !== "object") return effects();
    switch (payload.type) {
      case "sync_page":
        return this.onSyncPage(payload, now);
      case "error":
        return this.onError(payload, now);
      case "sync_reset":
        return this.onSyncReset(payload, now);
      case "typing":
      case "history":
      case "groups":
      case "profiles":
      case "devices":
      case "group_invite": // live answers of group settings commands
      case "group_requests":
      case "timer_info": // the answer to timer_get (disappearing messages)
      case "blocks":
      case "chats":
      case "search_results": // search
      case "ok": {
        const out = effects();
        out.events.push(payload);
        return out;
      }
      case "privacy":
        if (cursorOf(payload) === null) {
          const out = effects(); // the live answer to privacy_get
          out.events.push(payload);
          return out;
        }
      // falls through: a change, in cursor order
      default: {
        const cursor = cursorOf(payload);
        if (cursor === null) return effects();
        // a bad (or newer-than-us) event still takes its place in the order, as nothing
        return this.sequence([[cursor, isReadableSequenced(payload) ? payload : null]], now);
      }
    }
  }

  // ---------------------------------------------------------------- from the user
  /** Queue a message; published now when synced, else after the next sync. */
  send({ to, text, id = this.newCommandId("m"), replyTo }) {
    return this.queue(outgoing({ id, to, text, replyTo }));
  }

  /** Queue a forward of message `message` to `to`: an outgoing message like a send. */
  forward({ message, to, id = this.newCommandId("f") }) {
    return this.queue(outgoing({ id, to, text: "", forward: message }));
  }

  queue(o) {
    this.outbox.set(o.id, o);
    const out = effects();
    if (this.synced) out.commands.push({ payload: outgoingCommand(o), qos: 1 });
    return { id: o.id, effects: out };
  }

  /** Give up on a send (it failed for good): it is not resent any more. */
  forget(id) {
    this.outbox.delete(id);
  }

  receipts(messages, status) {
    const out = effects();
    for (const payload of receiptCommands({ status, messages, newCommandId: this.newCommandId })) {
      out.commands.push({ payload, qos: 1 });
    }
    return out;
  }

  typing(to, composing) {
    const out = effects();
    out.commands.push({ payload: typingCommand({ id: this.newCommandId("t"), to, composing }), qos: 0 });
    return out;
  }

  /** A command published as it is (group management...): its answer comes as an event with its ref. */
  request(payload) {
    const out = effects();
    out.commands.push({ payload, qos: 1 });
    return out;
  }

  // ---------------------------------------------------------------- internals
  resetConnection() {
    this.connected = false;
    this.subscribed = false;
    this.synced = false;
    this.activeSync = null;
    this.retryAt = null;
  }

  startSync(now, after) {
    const id = this.newCommandId("s");
    this.activeSync = id;
    this.activeAfter = Math.max(after, this.cursor);
    this.syncDeadline = now + SYNC_TIMEOUT_MS;
    this.retryAt = null;
    this.mySyncs.push(id);
    if (this.mySyncs.length > REMEMBERED_SYNCS) this.mySyncs.shift();
    this.sequencer.restartGapClock(now);
    const out = effects();
    out.commands.push({ payload: syncCommand({ id, after: this.activeAfter }), qos: 1 });
    return out;
  }

  onSyncPage(page, now) {
    if (!this.mySyncs.includes(page.ref)) return effects(); // another device's sync
    const entries = Array.isArray(page.entries) ? page.entries : [];
    const out = this.sequence(
      entries.map((e) => [cursorOf(e), isReadableSequenced(e) ? e : null]).filter(([c]) => c !== null),
      now,
    );
    if (page.ref !== this.activeSync) return out; // a late page of an abandoned sync
    const pageCursor = Number.isInteger(page.cursor) ? page.cursor : 0;
    if (page.more && Math.max(pageCursor, this.cursor) > this.activeAfter) {
      return merge(out, this.startSync(now, pageCursor));
    }
    this.activeSync = null;
    if (!this.synced && this.connected) {
      this.synced = true;
      out.synced = true;
      this.throttled = [];
      this.resendAt = null;
      for (const o of this.outbox.values()) {
        out.commands.push({ payload: outgoingCommand(o), qos: 1 });
      }
    }
    return out;
  }

  /**
   * The server pruned this inbox after our cursor (retention): jump to where it resumes, hand the
   * reset to the app (which rebuilds its chats from `history`), and sync on from there.
   */
  onSyncReset(reset, now) {
    if (!this.mySyncs.includes(reset.ref) || reset.ref !== this.activeSync) return effects();
    const cursor = Number.isInteger(reset.cursor) ? reset.cursor : this.cursor;
    this.sequencer.skipTo(cursor);
    const out = effects();
    out.events.push(reset);
    out.cursorAdvanced = true;
    return merge(out, this.startSync(now, cursor));
  }

  resendThrottled() {
    const waiting = new Set(this.throttled);
    this.throttled = [];
    this.resendAt = null;
    const out = effects();
    for (const o of this.outbox.values()) {
      if (waiting.has(o.id)) out.commands.push({ payload: outgoingCommand(o), qos: 1 });
    }
    return out;
  }

  onError(error, now) {
    const out = effects();
    const ref = typeof error.ref === "string" ? error.ref : null;
    if (ref !== null && this.outbox.has(ref) && TRANSIENT_CODES.has(error.code)) {
      if (!this.throttled.includes(ref)) this.throttled.push(ref);
      if (this.resendAt === null) this.resendAt = now + RESEND_DELAY_MS;
      return out; // not a failure: it is sent again in a moment
    }
    if (ref !== null && this.outbox.has(ref)) {
      this.outbox.delete(ref);
    } else if (ref !== null && ref === this.activeSync) {
      this.activeSync = null;
      this.retryAt = now + SYNC_RETRY_MS;
      return out;
    }
    out.events.push(error);
    return out;
  }

  sequence(entries, now) {
    const before = this.cursor;
    const ready = [];
    for (const [cursor, item] of entries) ready.push(...this.sequencer.offer(cursor, item, now));
    const out = effects();
    out.cursorAdvanced = this.cursor !== before;
    const delivered = [];
    for (const item of ready) {
      if (item === null) continue;
      if (item.type === "message" && item.message.from !== this.user) delivered.push(item.message.id);
      if (item.type === "sent") this.outbox.delete(item.ref);
      out.events.push(item);
    }
    if (delivered.length) merge(out, this.receipts(delivered, "delivered"));
    return out;
  }
}
