// What the web client knows: conversations and their messages, statuses, groups, presence and
// typing, and the profiles (display name, about, avatar) of the people in them. Sequenced inbox events are applied in cursor order (the session releases them so), and
// the cursor is saved together with the state it produced, in localStorage, one key per user: a
// reload resumes with `sync` after that cursor and nothing is applied twice.

import { STATUS_RANK, chatOf, isGroupId, parseProfile, parseReactions, timerLabel } from "./protocol.js";

export const TYPING_SHOWN_MS = 4000;
const STORAGE_VERSION = 1;
const SAVE_DELAY_MS = 250;
const KEEP_PER_CONVERSATION = 2000;

const storageKey = (user) => `mqchat:v${STORAGE_VERSION}:${user}`;

const GROUP_ACTIONS = {
  created: (by, affected) => `${by} created the group`,
  added: (by, affected) => `${by} added ${affected}`,
  removed: (by, affected) => `${by} removed ${affected}`,
  left: (by) => `${by} left`,
  promoted: (by, affected) => `${by} made ${affected} admin`,
  renamed: (by, affected, group) => `${by} renamed the group to “${group.name}”`,
  settings: (by) => `${by} changed the group settings`,
  joined: (by) => `${by} joined using an invite link`,
  approved: (by, affected) => `${by} approved ${affected}`,
};

/** When a message was last edited (seconds), or null. */
const editedAt = (message) => (typeof message.edited_at === "number" ? message.edited_at : null);

/** The quote (`reply`) and `forwarded` mark of a message, for its item: absent when not set. */
function quoteFields({ reply, forwarded }) {
  const fields = {};
  if (reply && typeof reply === "object" && typeof reply.id === "string") {
    fields.reply = {
      id: reply.id,
      from: String(reply.from || ""),
      seq: reply.seq,
      excerpt: typeof reply.excerpt === "string" ? reply.excerpt : "",
      mediaType: typeof reply.media_type === "string" ? reply.media_type : reply.mediaType || null,
      deleted: reply.deleted === true,
    };
  }
  if (forwarded === true) fields.forwarded = true;
  return fields;
}

export class Store {
  constructor(user) {
    this.user = user;
    this.cursor = 0;
    this.outbox = []; // sends not yet answered, as the session had them at the last save
    this.convs = new Map();
    this.byId = new Map(); // message id -> item
    this.byRef = new Map(); // command id of my own messages -> item
    this.presence = new Map(); // user -> {status, lastSeen}
    this.typing = new Map(); // user -> until (ms)
    this.profiles = new Map(); // user -> {user, name, about, avatar, ts}, saved with the cursor
    this.blocked = new Set(); // users I block: from `blocking` events and the `blocks` list after each sync
    this.listeners = new Set();
    this.saveTimer = null;
    this.quotaKeep = KEEP_PER_CONVERSATION;
  }

  // ---------------------------------------------------------------- persistence
  load() {
    let raw = null;
    try {
      raw = JSON.parse(localStorage.getItem(storageKey(this.user)) || "null");
    } catch {
      raw = null;
    }
    if (!raw || raw.v !== STORAGE_VERSION || !Number.isInteger(raw.cursor)) return this;
    this.cursor = raw.cursor;
    this.outbox = Array.isArray(raw.outbox) ? raw.outbox : [];
    for (const conv of raw.convs || []) {
      conv.items = (conv.items || []).filter((item) => !item.upload);
      this.convs.set(conv.id, conv);
      for (const item of conv.items) this.index(item);
    }
    for (const saved of raw.profiles || []) {
      const profile = parseProfile(saved);
      if (profile) this.profiles.set(profile.user, profile);
    }
    return this;
  }

  /** Remember the processed cursor and the unanswered sends, and save soon. */
  commit(cursor, outbox) {
    this.cursor = cursor;
    this.outbox = outbox;
    this.scheduleSave();
  }

  scheduleSave() {
    if (this.saveTimer === null) this.saveTimer = setTimeout(() => this.save(), SAVE_DELAY_MS);
  }

  save() {
    clearTimeout(this.saveTimer);
    this.saveTimer = null;
    for (;;) {
      const keep = this.quotaKeep;
      const convs = [...this.convs.values()].map((conv) => ({
        ...conv,
        items: conv.items.filter((item) => !item.upload).slice(-keep),
      }));
      const profiles = [...this.profiles.values()];
      const data = { v: STORAGE_VERSION, cursor: this.cursor, outbox: this.outbox, convs, profiles };
      try {
        localStorage.setItem(storageKey(this.user), JSON.stringify(data));
        return;
      } catch (error) {
        if (keep <= 20) {
          console.warn("mqchat: cannot save the conversations", error);
          return;
        }
        this.quotaKeep = Math.floor(keep / 2); // full: keep fewer old messages per conversation
      }
    }
  }

  /** Forget everything this browser kept for the user (log out). */
  clear() {
    clearTimeout(this.saveTimer);
    this.saveTimer = null;
    localStorage.removeItem(storageKey(this.user));
  }

  // ---------------------------------------------------------------- change notification
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(what) {
    for (const listener of this.listeners) listener(what);
  }

  // ---------------------------------------------------------------- conversations
  conversation(id, { create = true } = {}) {
    let conv = this.convs.get(id);
    if (!conv && create) {
      const group = isGroupId(id);
      conv = {
        id,
        kind: group ? "group" : "dm",
        name: group ? "Group" : id,
        members: group ? [] : [this.user, id],
        admins: [],
        left: false,
        items: [],
        unread: 0,
        lastTs: Date.now() / 1000,
      };
      this.convs.set(id, conv);
    }
    return conv || null;
  }

  /** Conversations, the most recent first. */
  sortedConversations() {
    return [...this.convs.values()].sort((a, b) => b.lastTs - a.lastTs);
  }

  /** Everyone whose presence matters: the partners of 1-on-1 chats and the members of groups. */
  contacts() {
    const users = new Set();
    for (const conv of this.convs.values()) {
      if (conv.kind === "dm") users.add(conv.id);
      else if (!conv.left) for (const m of conv.members) users.add(m);
    }
    users.delete(this.user);
    return users;
  }

  /** The people of these conversations: the partner of a 1-on-1 chat, the members of a group. */
  peopleOf(ids) {
    const users = new Set();
    for (const id of ids) {
      const conv = this.convs.get(id);
      if (!conv) continue;
      if (conv.kind === "dm") users.add(conv.id);
      else for (const m of conv.members) users.add(m);
    }
    return users;
  }

  index(item) {
    if (item.id) this.byId.set(item.id, item);
    if (item.ref) this.byRef.set(item.ref, item);
  }

  add(conv, item) {
    // settled messages go before my messages still waiting for `sent`
    const firstPending = conv.items.findIndex((i) => i.pending);
    if (firstPending < 0 || item.pending) conv.items.push(item);
    else conv.items.splice(firstPending, 0, item);
    conv.lastTs = Math.max(conv.lastTs, item.ts);
    this.index(item);
  }

  /** One of my messages, before the server has it (a text or an upload). */
  addPending({ ref, to, text, upload = null, reply = null, forwarded = false }) {
    const conv = this.conversation(to);
    const item = {
      key: `o:${ref}`,
      kind: "msg",
      id: null,
      ref,
      from: this.user,
      text,
      ts: Date.now() / 1000,
      seq: null,
      media: null,
      status: "pending",
      pending: true,
      upload, // {previewUrl, file, type} while uploading; never saved
      by: {},
      ...quoteFields({ reply, forwarded }),
    };
    this.add(conv, item);
    this.scheduleSave();
    this.changed({ conv: conv.id });
    return item;
  }

  /** The quote of a message this page has, for a reply being sent (shown until `sent` comes). */
  quoteOf(messageId) {
    const item = messageId ? this.byId.get(messageId) : null;
    if (!item) return null;
    return { id: item.id, from: item.from, seq: item.seq, excerpt: (item.text || "").slice(0, 100), mediaType: item.media?.type || null };
  }

  failPending(ref, message) {
    const item = this.byRef.get(ref);
    if (!item || !item.pending) return null;
    item.status = "failed";
    item.error = message;
    this.scheduleSave();
    this.changed({ conv: this.convOf(item) });
    return item;
  }

  convOf(item) {
    for (const conv of this.convs.values()) if (conv.items.includes(item)) return conv.id;
    return null;
  }

  // ---------------------------------------------------------------- sequenced events, in cursor order
  apply(event) {
    switch (event.type) {
      case "message":
        return this.onMessage(event.message);
      case "sent":
        return this.onSent(event.ref, event.message);
      case "receipt":
        return this.onReceipt(event);
      case "group":
        return this.onGroup(event);
      case "deleted":
        return this.onDeleted(event.message);
      case "profile":
        return this.onProfile(parseProfile(event.profile));
      case "reaction":
        return this.onReaction(event);
      case "edited":
        return this.onEdited(event.message);
      case "hidden":
        return this.onHidden(event.message_id);
      case "timer":
        return this.onTimer(event);
      case "expired":
        return this.onExpired(event.messages);
      case "blocking":
        return this.onBlocking(event.user, event.blocked);
      case "read":
        return this.onRead(event);
      default:
        return null;
    }
  }

  // ---------------------------------------------------------------- blocking
  /** I blocked (or unblocked) a user, on this device or another: their chat shows it. */
  onBlocking(user, blocked) {
    if (blocked) this.blocked.add(user);
    else this.blocked.delete(user);
    return this.convs.has(user) ? user : null;
  }

  /** The whole list, answered to `blocks` (after each sync: events before the saved cursor are not replayed). */
  onBlocks(users) {
    this.blocked = new Set(users);
  }

  onMessage(message) {
    if (message.hidden || message.expired) return this.onHidden(message.id); // deleted for me, expired: never shown
    const peer = isGroupId(message.to) ? message.to : message.from === this.user ? message.to : message.from;
    const conv = this.conversation(peer);
    if (this.byId.has(message.id)) return conv.id;
    const incoming = message.from !== this.user;
    this.add(conv, this.messageItem(message));
    if (incoming) {
      conv.unread += 1;
      this.typing.delete(message.from);
    }
    return conv.id;
  }

  onSent(ref, message) {
    const conv = this.conversation(message.to);
    const item = this.byRef.get(ref);
    if (item && item.pending) {
      conv.items.splice(conv.items.indexOf(item), 1);
      Object.assign(item, {
        id: message.id,
        text: message.text,
        editedAt: editedAt(message),
        ts: message.ts,
        seq: message.seq,
        media: message.media || null,
        reactions: parseReactions(message.reactions) || {},
        expiresAt: typeof message.expires_at === "number" ? message.expires_at : null,
        pending: false,
        error: undefined,
        ...quoteFields(message),
      });
      if (STATUS_RANK[item.status] === undefined || item.status === "pending" || item.status === "failed") {
        item.status = "sent";
      }
      if (item.upload) {
        item.localPreview = item.upload.previewUrl; // shown until the thumbnail is fetched
        item.upload = null;
      }
      this.add(conv, item);
      return conv.id;
    }
    if (item || this.byId.has(message.id)) return conv.id; // answered twice
    if (message.hidden || message.expired) return null; // deleted for me, or expired
    // sent from another of my devices
    this.add(conv, {
      key: `o:${ref}`,
      kind: "msg",
      id: message.id,
      ref,
      from: this.user,
      text: message.deleted ? "" : message.text,
      deleted: message.deleted === true,
      editedAt: editedAt(message),
      ts: message.ts,
      seq: message.seq,
      media: message.media || null,
      reactions: parseReactions(message.reactions) || {},
      expiresAt: typeof message.expires_at === "number" ? message.expires_at : null,
      status: "sent",
      pending: false,
      by: {},
      ...quoteFields(message),
    });
    return conv.id;
  }

  /** A reaction changed: the message's whole summary is in the event. */
  onReaction(event) {
    const item = this.byId.get(event.message_id);
    if (!item) return null; // older than what this browser keeps
    item.reactions = parseReactions(event.reactions) || {};
    this.scheduleSave();
    return this.convOf(item);
  }

  /** A message deleted for everyone: its bubble keeps its place and forgets its text and media. */
  onDeleted(message) {
    const quoting = this.unquote(message);
    const item = this.byId.get(message.id);
    if (!item) return this.onMessage(message); // older than what this browser keeps: the tombstone
    Object.assign(item, {
      text: "",
      media: null,
      localPreview: null,
      deleted: true,
      reactions: {},
      reply: null,
    });
    this.scheduleSave();
    return this.convOf(item) || quoting;
  }

  /**
   * The quotes of a message deleted for everyone lose its excerpt here too (the server scrubbed
   * them in the store; a device that was online only gets the `deleted` event).
   */
  unquote(message) {
    let conv = null;
    for (const c of this.convs.values()) {
      for (const item of c.items) {
        if (item.reply && item.reply.id === message.id && !item.reply.deleted) {
          item.reply = { id: item.reply.id, from: item.reply.from, seq: item.reply.seq, deleted: true };
          conv = c.id;
        }
      }
    }
    return conv;
  }

  // ---------------------------------------------------------------- edits and deletes for me
  /** An edited message: its bubble shows the new text (or caption) and an "edited" mark. */
  onEdited(message) {
    const requoted = this.requote(message);
    const item = this.byId.get(message.id);
    if (!item || item.deleted) return requoted; // older than what this browser keeps, or a tombstone
    Object.assign(item, { text: message.text, editedAt: editedAt(message) });
    this.scheduleSave();
    return this.convOf(item);
  }

  /** The quotes of an edited message take its new text here too, as the server's did. */
  requote(message) {
    let conv = null;
    for (const c of this.convs.values()) {
      for (const item of c.items) {
        if (item.reply && item.reply.id === message.id && !item.reply.deleted) {
          item.reply = { ...item.reply, excerpt: String(message.text || "").slice(0, 100) };
          conv = c.id;
        }
      }
    }
    return conv;
  }

  /** A message I deleted for me (on any device): it leaves the view and what this browser keeps. */
  onHidden(messageId) {
    const item = this.byId.get(messageId);
    if (!item) return null;
    const conv = this.convOf(item);
    const items = this.convs.get(conv).items;
    items.splice(items.indexOf(item), 1);
    this.byId.delete(messageId);
    if (item.ref) this.byRef.delete(item.ref);
    this.scheduleSave();
    return conv;
  }

  // ---------------------------------------------------------------- disappearing messages
  /** The conversation of a `timer` event: the group, or the other user of a `dm:<a>:<b>` chat. */
  convOfConversation(conversation) {
    if (isGroupId(conversation)) return conversation;
    const [, a, b] = conversation.split(":");
    return a === this.user ? b : a;
  }

  /** A conversation's timer was set: it is remembered, and announced in the chat. */
  onTimer(event) {
    const conv = this.conversation(this.convOfConversation(event.conversation));
    conv.timer = event.seconds;
    const who = event.by === this.user ? "You" : this.nameOf(event.by);
    const text = event.seconds
      ? `${who} turned on disappearing messages: new messages disappear after ${timerLabel(event.seconds)}`
      : `${who} turned off disappearing messages`;
    const ts = typeof event.ts === "number" ? event.ts : Date.now() / 1000;
    this.add(conv, { key: `s:${event.cursor}`, kind: "system", timer: true, text, ts, pending: false });
    return conv.id;
  }

  /** The answer to `timer_get`: the timer of a conversation this page did not know. */
  onTimerInfo(answer) {
    const conv = this.convs.get(this.convOfConversation(answer.conversation));
    if (!conv || !Number.isInteger(answer.seconds) || conv.timer === answer.seconds) return;
    conv.timer = answer.seconds;
    this.scheduleSave();
    this.changed({ conv: conv.id });
  }

  /** Messages expired: they leave the view and what this browser keeps, like a delete for me. */
  onExpired(messages) {
    let first = null;
    for (const stub of messages) {
      this.unquote(stub);
      const conv = this.onHidden(stub.id);
      if (conv === null) continue;
      if (first === null) first = conv;
      else if (conv !== first) this.changed({ conv });
    }
    return first;
  }

  onReceipt(receipt) {
    const item = this.byId.get(receipt.message_id);
    if (!item) return null; // older than what this browser keeps
    const rank = STATUS_RANK[receipt.status];
    // one event may name several members of a group (`also_by`): each reached this status
    for (const member of [receipt.by, ...(receipt.also_by || [])]) {
      if ((STATUS_RANK[item.by[member]] || 0) < rank) item.by[member] = receipt.status;
    }
    if (receipt.all && (STATUS_RANK[item.status] || 0) < rank) item.status = receipt.status;
    return this.convOf(item);
  }

  onGroup(event) {
    const group = event.group;
    const conv = this.conversation(group.id);
    this.updateGroup(conv, group);
    const affected = (event.affected || []).filter((u) => typeof u === "string");
    if ((event.action === "removed" || event.action === "left") && affected.includes(this.user)) {
      conv.left = true;
    } else if (group.members.includes(this.user)) {
      conv.left = false;
    }
    const describe = GROUP_ACTIONS[event.action];
    const name = (u) => (u === this.user ? "you" : u);
    const who = affected.filter((u) => u !== event.by || event.action !== "created").map(name);
    let text = describe ? describe(name(event.by), who.join(", "), group) : `${name(event.by)} changed the group`;
    if (text.startsWith("you ")) text = "Y" + text.slice(1); // user ids keep their case
    const ts = typeof event.ts === "number" ? event.ts : Date.now() / 1000;
    this.add(conv, { key: `s:${event.cursor}`, kind: "system", text, ts, pending: false });
    return conv.id;
  }

  updateGroup(conv, group) {
    conv.kind = "group";
    conv.name = group.name;
    conv.members = group.members.slice();
    conv.admins = group.admins.slice();
    // the settings that are set (left out: off or empty)
    conv.settings = {
      description: typeof group.description === "string" ? group.description : "",
      icon: group.icon && typeof group.icon.key === "string" ? group.icon : null,
      onlyAdminsSend: group.only_admins_send === true,
      approval: group.approval === true,
    };
    // a group snapshot carries the profile of each member who set one, by user id
    if (group.profiles && typeof group.profiles === "object") {
      for (const [user, value] of Object.entries(group.profiles)) this.setProfile(parseProfile(value, user));
    }
  }

  // ---------------------------------------------------------------- history
  /**
   * A page of a conversation's history (`history` answer): each message as it is now. One this
   * browser has is brought up to date; one it has not goes in its place by seq. `older`: the page
   * was asked for before the oldest message shown (scrolling up), so `more` says whether older
   * ones exist; the latest page says so too when nothing older is known here.
   */
  onHistory(convId, messages, receipts, more, { older = false } = {}) {
    const conv = this.conversation(convId);
    for (const message of messages) {
      if (!message || typeof message.id !== "string" || !Number.isInteger(message.seq)) continue;
      if (message.hidden || message.expired) {
        this.onHidden(message.id); // deleted for me, or expired: never shown
        continue;
      }
      const state = receipts && receipts[message.id];
      const known = this.byId.get(message.id);
      if (known) {
        Object.assign(known, {
          text: message.deleted ? "" : message.text,
          deleted: message.deleted === true,
          editedAt: editedAt(message),
          media: message.deleted ? null : message.media || null,
          reactions: parseReactions(message.reactions) || {},
          ...quoteFields(message),
        });
        if (state && (STATUS_RANK[known.status] || 0) < STATUS_RANK[state.status]) known.status = state.status;
        continue;
      }
      const item = this.messageItem(message, state ? state.status : "sent");
      item.readSent = message.from !== this.user; // history is not news: no unread count for it
      const at = conv.items.findIndex(
        (i) => i.pending || (i.kind === "msg" && Number.isInteger(i.seq) && i.seq > message.seq),
      );
      if (at < 0) conv.items.push(item);
      else conv.items.splice(at, 0, item);
      conv.lastTs = Math.max(conv.lastTs, item.ts);
      this.index(item);
    }
    if (older || conv.olderMore === undefined) conv.olderMore = more === true;
    conv.historyLoaded = true;
    this.scheduleSave();
    return conv.id;
  }

  /** The lowest seq of the messages shown in a conversation (where to page back from), or null. */
  oldestSeq(convId) {
    const conv = this.convs.get(convId);
    let oldest = null;
    for (const item of conv ? conv.items : []) {
      if (item.kind === "msg" && Number.isInteger(item.seq) && (oldest === null || item.seq < oldest)) oldest = item.seq;
    }
    return oldest;
  }

  /** The bubble of a stored message (`status`: mine as far as known; others' "received"). */
  messageItem(message, status = "sent") {
    const incoming = message.from !== this.user;
    return {
      key: `m:${message.id}`,
      kind: "msg",
      id: message.id,
      ref: null,
      from: message.from,
      text: message.deleted ? "" : message.text,
      deleted: message.deleted === true,
      editedAt: editedAt(message),
      ts: message.ts,
      seq: message.seq,
      media: message.media || null,
      reactions: parseReactions(message.reactions) || {},
      expiresAt: typeof message.expires_at === "number" ? message.expires_at : null,
      status: incoming ? "received" : status,
      pending: false,
      readSent: false,
      by: {},
      ...quoteFields(message),
    };
  }

  // ---------------------------------------------------------------- profiles
  /** A `profile` event (in cursor order): the 1-on-1 chat with that user, if any, changed. */
  onProfile(profile) {
    if (!this.setProfile(profile)) return null;
    return this.convs.has(profile.user) ? profile.user : null;
  }

  /** The answer to `profile_get`. */
  onProfiles(profiles) {
    let changed = false;
    for (const profile of profiles) changed = this.setProfile(profile) || changed;
    if (changed) {
      this.scheduleSave();
      this.changed({ profiles: true });
    }
  }

  /** Keep a profile unless a newer one is known already (snapshots and answers may be older). */
  setProfile(profile) {
    if (!profile) return false;
    const known = this.profiles.get(profile.user);
    if (known && known.ts > profile.ts) return false;
    this.profiles.set(profile.user, profile);
    return true;
  }

  /** What to call a user: their display name when they set one, else their user id. */
  nameOf(user) {
    return this.profiles.get(user)?.name || user;
  }

  /** The title of a conversation: the group's name, or the other person's display name. */
  titleOf(conv) {
    return conv.kind === "dm" ? this.nameOf(conv.id) : conv.name;
  }

  avatarOf(user) {
    return this.profiles.get(user)?.avatar?.key || null;
  }

  // ---------------------------------------------------------------- live events
  /** The answer to `group_list`: every group this user is in now. */
  onGroups(groups) {
    const current = new Set();
    for (const group of groups) {
      const conv = this.conversation(group.id);
      this.updateGroup(conv, group);
      conv.left = false;
      current.add(group.id);
    }
    for (const conv of this.convs.values()) {
      if (conv.kind === "group" && !current.has(conv.id)) conv.left = true;
    }
    this.scheduleSave();
    this.changed({ list: true });
  }

  onTyping(from, composing) {
    if (composing) this.typing.set(from, Date.now() + TYPING_SHOWN_MS);
    else this.typing.delete(from);
    this.changed({ typing: from });
  }

  isTyping(user, now = Date.now()) {
    const until = this.typing.get(user);
    return until !== undefined && until > now;
  }

  onPresence(presence) {
    this.presence.set(presence.user, presence);
    this.changed({ presence: presence.user });
  }

  // ---------------------------------------------------------------- reading
  /** Incoming messages of a conversation not yet reported read; marks them so. */
  takeUnread(convId) {
    const conv = this.convs.get(convId);
    if (!conv) return [];
    const ids = [];
    for (const item of conv.items) {
      if (item.kind === "msg" && item.from !== this.user && item.id && !item.readSent) {
        item.readSent = true;
        ids.push(item.id);
      }
    }
    if (ids.length || conv.unread) {
      conv.unread = 0;
      this.scheduleSave();
    }
    return ids;
  }

  // ---------------------------------------------------------------- chat list and read state
  /** A page of the server's chat list: each chat's name, last message, unread count and read
   * position, so a new browser shows its chats without replaying the whole inbox. */
  onChats(chats) {
    const convs = new Set();
    for (const chat of chats) {
      const id = chat.kind === "group" ? chat.group?.id : chat.peer;
      if (!id || typeof id !== "string") continue;
      const conv = this.conversation(id);
      if (chat.kind === "group" && chat.group) {
        conv.name = String(chat.group.name || conv.name);
        conv.left = chat.group.member === false;
      }
      if (chat.last_message && !chat.last_message.hidden) {
        const before = conv.unread;
        this.onMessage(chat.last_message);
        conv.unread = before;
      }
      // the server's activity time, or a newer message of this page's: not when this page first
      // saw the chat (a conversation made by a sync takes the time it was made)
      const newest = Math.max(0, ...conv.items.map((item) => item.ts || 0));
      if (typeof chat.ts === "number") conv.lastTs = Math.max(chat.ts, newest);
      this.readUpTo(conv, chat.read_seq);
      if (Number.isInteger(chat.unread)) conv.unread = chat.unread;
      convs.add(id);
    }
    this.scheduleSave();
    this.changed({ convs });
    return convs;
  }

  /** I read a chat up to `read_seq` on one of my devices (this one or another). */
  onRead(event) {
    const id = chatOf(event.conversation, this.user);
    const conv = id ? this.conversation(id, { create: false }) : null;
    if (!conv || !Number.isInteger(event.read_seq)) return null;
    this.readUpTo(conv, event.read_seq);
    const last = Math.max(0, ...conv.items.filter((i) => i.seq).map((i) => i.seq));
    const unread = conv.items.filter(
      (i) => i.kind === "msg" && i.from !== this.user && i.id && i.seq > conv.readSeq,
    ).length;
    conv.unread = event.read_seq >= last ? 0 : Math.min(conv.unread, unread);
    return conv.id;
  }

  /** Everything of `conv` up to `seq` was read: no read receipt is sent for it again. */
  readUpTo(conv, seq) {
    if (!Number.isInteger(seq)) return;
    conv.readSeq = Math.max(conv.readSeq || 0, seq);
    for (const item of conv.items) {
      if (item.kind === "msg" && item.seq && item.seq <= conv.readSeq) item.readSent = true;
    }
  }
}
