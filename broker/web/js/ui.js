// The page: the chat list, the open conversation, dialogs and toasts. DOM only, built with
// createElement/textContent (nothing from the wire is ever parsed as HTML). What the user does
// goes to `actions`; what is shown comes from the Store.

import {
  VoiceRecorder,
  attachmentKind,
  attachmentLabel,
  documentNode,
  uploadKindOf,
  voiceNode,
} from "./attachments.js";
import { clock, day, dayKey, lastSeen, listTime, seenAt } from "./format.js";
import { MAX_ABOUT_LENGTH, MAX_NAME_LENGTH, timerLabel } from "./protocol.js";

const PAGE = 50; // messages shown at once; scrolling up shows PAGE more
const MEDIA_MAX_WIDTH = 330;
const MEDIA_MIN_WIDTH = 140;
const STICK_TO_BOTTOM_PX = 80;
const TOAST_MS = 5000;

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const COLORS = ["#00a884", "#53bdeb", "#f15c6d", "#a5b337", "#6bcbef", "#ff8a8c", "#7f66ff", "#ffbc38", "#02a698", "#d3396d", "#1fa855", "#c4532d"];

function colorOf(id) {
  let hash = 0;
  for (const ch of id) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return COLORS[hash % COLORS.length];
}

/**
 * A round avatar: the user's photo when they set one (fetched like media, once per key), else the
 * first letter of the name on a colour of the id. Repainting with the same values does nothing,
 * so a chat list redrawn on every message does not fetch or flicker.
 */
function paintAvatar(node, { id, name, online = false, photo = null, media = null }) {
  node.classList.toggle("online", online);
  const letters = name.replace(/^g:/, "").replace(/[^\p{L}\p{N}]/gu, "");
  const letter = (letters[0] || "?").toUpperCase();
  const state = photo && media ? `p:${photo}` : `l:${letter}:${id}`;
  if (node.dataset.painted === state) return;
  node.dataset.painted = state;
  node.dataset.photo = photo && media ? photo : "";
  node.classList.remove("photo");
  node.style.background = colorOf(id);
  node.textContent = letter;
  if (!photo || !media) return;
  media.url(photo).then(
    (url) => {
      if (node.dataset.painted !== state) return; // changed meanwhile
      const img = el("img");
      img.alt = "";
      img.src = url;
      node.classList.add("photo");
      node.style.background = "";
      node.replaceChildren(img);
    },
    () => {}, // the letter stays
  );
}

function clockIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "13");
  svg.setAttribute("height", "13");
  const circle = document.createElementNS(ns, "circle");
  for (const [k, v] of Object.entries({ cx: 8, cy: 8, r: 6.5, fill: "none", stroke: "currentColor", "stroke-width": 1.4 })) {
    circle.setAttribute(k, v);
  }
  const hands = document.createElementNS(ns, "path");
  hands.setAttribute("d", "M8 4.2V8l2.6 1.6");
  hands.setAttribute("fill", "none");
  hands.setAttribute("stroke", "currentColor");
  hands.setAttribute("stroke-width", "1.4");
  svg.append(circle, hands);
  return svg;
}

/** The status mark of one of my messages: a clock, ✓ sent, ✓✓ delivered (grey), ✓✓ read (blue). */
export function tick(item) {
  const node = el("span", "tick");
  node.dataset.status = item.status;
  switch (item.status) {
    case "pending":
      node.classList.add("pending");
      node.title = "Sending";
      node.append(clockIcon());
      break;
    case "failed":
      node.classList.add("failed");
      node.textContent = "!";
      node.title = "Not sent";
      break;
    case "sent":
      node.textContent = "✓";
      node.title = "Sent";
      break;
    case "delivered":
      node.textContent = "✓✓";
      node.title = "Delivered";
      break;
    case "read":
      node.textContent = "✓✓";
      node.classList.add("read");
      node.title = "Read";
      break;
    default:
      return null;
  }
  return node;
}

function mediaLabel(media, upload) {
  if (attachmentKind(media, upload)) return attachmentLabel(media, upload);
  const type = media?.type || upload?.type || "";
  return type.startsWith("video/") ? "Video" : "Photo";
}

function receiptsTitle(item) {
  const entries = Object.entries(item.by || {});
  if (!entries.length) return "";
  const read = entries.filter(([, s]) => s === "read").map(([u]) => u);
  const delivered = entries.filter(([, s]) => s === "delivered").map(([u]) => u);
  const parts = [];
  if (read.length) parts.push(`Read by ${read.join(", ")}`);
  if (delivered.length) parts.push(`Delivered to ${delivered.join(", ")}`);
  return parts.join(" · ");
}

/** The emoji of the quick picker in a message's toolbar. */
export const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

/**
 * The reaction chips under a bubble: one per emoji with its count, mine highlighted. Clicking my
 * chip takes my reaction back; clicking another reacts with its emoji. Null when nobody reacted.
 */
function reactionChips(item, me, nameOf) {
  const byEmoji = new Map();
  for (const [user, emoji] of Object.entries(item.reactions || {})) {
    if (!byEmoji.has(emoji)) byEmoji.set(emoji, []);
    byEmoji.get(emoji).push(user);
  }
  if (!byEmoji.size) return null;
  const box = el("div", "reactions");
  for (const [emoji, users] of byEmoji) {
    const mine = users.includes(me);
    const chip = el("button", `reaction-chip${mine ? " mine" : ""}`);
    chip.type = "button";
    chip.dataset.emoji = emoji;
    chip.title = users.map(nameOf).join(", ") + (mine ? " (click to remove yours)" : "");
    chip.append(el("span", "emoji", emoji), el("span", "count", String(users.length)));
    box.append(chip);
  }
  return box;
}

/**
 * The actions toolbar of a stored message (shown on hover or focus, beside the bubble): buttons
 * with a `data-action` that `View.runAction` carries out. Reply and forward; reactions: a button
 * that opens a small picker of QUICK_REACTIONS (my current one marked; picking it again takes it
 * back). Edit and delete are in the changes bar (changeActions). A message the server does not
 * have yet, or a tombstone, has none.
 */
export function messageActions(item, me) {
  if (!item.id || item.pending || item.deleted) return null;
  const bar = el("div", "msg-actions");
  bar.setAttribute("role", "toolbar");
  bar.setAttribute("aria-label", "Message actions");
  for (const [action, label, icon] of [
    ["reply", "Reply", "↩"],
    ["forward", "Forward", "↪"],
  ]) {
    const button = el("button", `action msg-action action-${action}`, icon);
    button.type = "button";
    button.dataset.action = action;
    button.title = label;
    button.setAttribute("aria-label", label);
    bar.append(button);
  }
  const open = el("button", "action react-open", "☺");
  open.type = "button";
  open.dataset.action = "react-open";
  open.title = "React";
  open.setAttribute("aria-label", "React");
  const picker = el("div", "react-picker");
  picker.hidden = true;
  for (const emoji of QUICK_REACTIONS) {
    const mine = (item.reactions || {})[me] === emoji;
    const pick = el("button", `react-pick${mine ? " mine" : ""}`, emoji);
    pick.type = "button";
    pick.dataset.action = "react";
    pick.dataset.emoji = emoji;
    picker.append(pick);
  }
  bar.append(open, picker);
  return bar;
}

/**
 * The changes bar of a message bubble (shown on hover or focus, above its corner): Edit and Delete
 * for everyone on my own messages (a group admin may delete anyone's for everyone), Delete for me
 * on every message. None on a message not stored yet or deleted already. Each button carries its
 * action in `data-action` (View.onChangeAction).
 */
function changeActions(item, { mine, admin }) {
  if (!item.id || item.pending || item.deleted) return null;
  const bar = el("div", "actions");
  const button = (action, label, title) => {
    const b = el("button", `action ${action}`, label);
    b.type = "button";
    b.dataset.action = action;
    b.title = title;
    bar.append(b);
  };
  if (mine) button("edit", "Edit", "Edit this message");
  if (mine || admin) button("delete-everyone", "Delete for everyone", "Delete this message for everyone");
  button("delete-me", "Delete for me", "Remove this message from your devices");
  return bar;
}

/** The bubble a reply shows above its text: who wrote the quoted message and its first words. */
export function quoteNode(reply, nameOf) {
  const node = el("div", "quote");
  node.dataset.quoted = reply.id;
  node.title = "Show the original message";
  const who = el("div", "quote-from", nameOf(reply.from));
  who.style.color = colorOf(reply.from);
  let body;
  if (reply.deleted) body = el("div", "quote-text deleted", "This message was deleted");
  else {
    const media = reply.mediaType ? (reply.mediaType.startsWith("video/") ? "🎥 Video" : "📷 Photo") : "";
    body = el("div", "quote-text", [media, reply.excerpt].filter(Boolean).join(": ") || "…");
  }
  node.append(who, body);
  return node;
}

export class View {
  constructor({ store, media, actions, timers = [86400, 604800, 7776000] }) {
    this.store = store;
    this.media = media;
    this.actions = actions;
    this.timers = timers; // the disappearing-message timers the server allows, besides off
    this.me = store.user;
    this.openId = null;
    this.viewCount = new Map(); // conversation -> how many messages are shown
    this.nodes = new Map(); // key -> element of the open conversation
    this.listNodes = new Map(); // conversation -> <li>
    this.typingTimer = null;
    this.replyingTo = null; // the message the composer answers
    this.forwarding = null; // the message the forward dialog sends on
    this.bind();
  }

  // ---------------------------------------------------------------- wiring
  bind() {
    this.unbind = [];
    const on = (target, type, handler) => {
      target.addEventListener(type, handler);
      this.unbind.push(() => target.removeEventListener(type, handler));
    };
    on($("chat-list"), "click", (e) => {
      const li = e.target.closest(".chat-item");
      if (li) this.actions.open(li.dataset.conv);
    });
    on($("messages"), "scroll", () => this.onScroll());
    this.bindBlocking(on);
    on($("message-list"), "click", (e) => this.onMessageClick(e));
    on($("composer"), "submit", (e) => {
      e.preventDefault();
      this.submitText();
    });
    on($("composer-text"), "keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submitText();
      }
    });
    on($("composer-text"), "input", () => {
      this.autosize();
      this.actions.typing($("composer-text").value.trim() !== "");
    });
    on($("attach-input"), "change", () => {
      const file = $("attach-input").files[0];
      $("attach-input").value = "";
      if (file) this.pickMedia(file);
    });
    const record = $("record-button");
    record.hidden = !VoiceRecorder.supported();
    on(record, "click", () => this.toggleRecording());
    on($("conv-timer"), "change", () => this.onTimerPicked());
    on($("new-chat"), "click", () => this.openDialog("new-chat-dialog", "new-chat-user"));
    on($("new-group"), "click", () => this.openDialog("new-group-dialog", "new-group-name"));
    on($("logout"), "click", () => this.actions.logout());
    on($("me-button"), "click", () => this.openProfile());
    on($("profile-form"), "submit", (e) => {
      e.preventDefault(); // stays open: the answer shows in it
      this.saveProfile();
    });
    on($("profile-avatar-input"), "change", () => {
      const file = $("profile-avatar-input").files[0];
      $("profile-avatar-input").value = "";
      if (file) this.profileBusy(this.actions.setAvatar(file), "Uploading your photo…");
    });
    on($("profile-avatar-remove"), "click", () => this.profileBusy(this.actions.setAvatar(null), "Removing your photo…"));
    on($("show-devices"), "click", () => this.openDevices());
    on($("back"), "click", () => this.actions.open(null));
    on($("new-chat-form"), "submit", (e) => {
      const user = $("new-chat-user").value.trim();
      if (!this.actions.newChat(user)) e.preventDefault(); // keep the dialog open
    });
    on($("new-group-form"), "submit", (e) => {
      const name = $("new-group-name").value.trim();
      const members = $("new-group-members").value.split(/[\s,;]+/).filter(Boolean);
      if (!this.actions.newGroup(name, members)) e.preventDefault();
    });
    on($("media-form"), "submit", () => this.sendMedia());
    on($("edit-form"), "submit", () => this.saveEdit());
    on($("media-dialog"), "close", () => this.dropMediaPreview());
    on($("viewer-close"), "click", () => $("viewer-dialog").close());
    on($("reply-cancel"), "click", () => this.cancelReply());
    on($("forward-list"), "click", (e) => this.onForwardPick(e));
    on($("forward-dialog"), "close", () => (this.forwarding = null));
    on($("viewer-dialog"), "close", () => $("viewer-body").replaceChildren());
    for (const dialog of document.querySelectorAll("dialog")) {
      for (const cancel of dialog.querySelectorAll(".cancel")) on(cancel, "click", () => dialog.close());
    }
    this.typingTimer = setInterval(() => this.expireTyping(), 500);
  }

  destroy() {
    clearInterval(this.typingTimer);
    for (const off of this.unbind) off();
    for (const dialog of document.querySelectorAll("dialog")) if (dialog.open) dialog.close();
    $("chat-list").replaceChildren();
    $("message-list").replaceChildren();
    this.nodes.clear();
    this.listNodes.clear();
  }

  openDialog(id, focus) {
    const dialog = $(id);
    dialog.querySelector("form").reset();
    dialog.showModal();
    $(focus).focus();
  }

  toast(message) {
    const node = el("div", "toast", message);
    $("toasts").append(node);
    setTimeout(() => node.remove(), TOAST_MS);
  }

  // ---------------------------------------------------------------- top level
  showChat() {
    document.body.dataset.view = "chat";
    $("login-view").hidden = true;
    $("chat-view").hidden = false;
    this.renderMe();
    this.renderList();
    this.renderConversation({ toEnd: true });
  }

  setConnection(state) {
    const labels = { connecting: "connecting…", syncing: "updating…", online: "online", offline: "reconnecting…" };
    const node = $("connection-status");
    node.dataset.state = state;
    node.textContent = labels[state] || state;
    document.body.dataset.connection = state;
  }

  /** My own name and avatar (and the profile form's photo while it is open). */
  renderMe() {
    const mine = this.store.profiles.get(this.me);
    $("me-name").textContent = this.store.nameOf(this.me);
    $("me-name").title = mine?.name ? `${mine.name} (${this.me})` : this.me;
    const look = { id: this.me, name: this.store.nameOf(this.me), photo: this.store.avatarOf(this.me), media: this.media };
    paintAvatar($("me-avatar"), look);
    if ($("profile-dialog").open) {
      paintAvatar($("profile-avatar"), look);
      $("profile-avatar-remove").disabled = !look.photo;
    }
  }

  /** Something in the store changed: {conv, convs, all, presence, typing, profiles}. */
  update(what = {}) {
    this.renderMe();
    this.renderList();
    if (this.openId === null) return;
    const conv = this.store.convs.get(this.openId);
    if (what.all || what.conv === this.openId || what.convs?.has(this.openId)) this.renderMessages({});
    if (conv) this.renderHeader(conv);
  }

  open(convId) {
    if (this.replyingTo) this.cancelReply();
    this.openId = convId;
    $("chat-view").classList.toggle("in-conversation", convId !== null);
    this.nodes.clear();
    $("message-list").replaceChildren();
    if (convId !== null && !this.viewCount.has(convId)) this.viewCount.set(convId, PAGE);
    this.renderList();
    this.renderConversation({ toEnd: true });
    if (convId !== null) {
      $("composer-text").value = "";
      this.autosize();
      $("composer-text").focus();
    }
  }

  expireTyping() {
    const now = Date.now();
    let expired = false;
    for (const [user, until] of this.store.typing) {
      if (until <= now) {
        this.store.typing.delete(user);
        expired = true;
      }
    }
    if (expired) this.update({});
  }

  // ---------------------------------------------------------------- chat list
  renderList() {
    const list = $("chat-list");
    const convs = this.store.sortedConversations();
    $("chat-list-empty").hidden = convs.length > 0;
    const unread = convs.reduce((sum, conv) => sum + conv.unread, 0);
    document.title = unread ? `(${unread}) mqchat` : "mqchat";
    const seen = new Set();
    let cursor = list.firstChild;
    for (const conv of convs) {
      seen.add(conv.id);
      let li = this.listNodes.get(conv.id);
      if (!li) {
        li = el("li", "chat-item");
        li.dataset.conv = conv.id;
        this.listNodes.set(conv.id, li);
      }
      this.fillListItem(li, conv);
      if (li !== cursor) list.insertBefore(li, cursor);
      else cursor = cursor.nextSibling;
    }
    for (const [id, li] of this.listNodes) {
      if (!seen.has(id)) {
        li.remove();
        this.listNodes.delete(id);
      }
    }
  }

  fillListItem(li, conv) {
    li.classList.toggle("active", conv.id === this.openId);
    li.classList.toggle("unread", conv.unread > 0);
    const presence = conv.kind === "dm" ? this.store.presence.get(conv.id) : null;
    const title = this.store.titleOf(conv);
    li.title = title === conv.id ? "" : `${title} (${conv.id})`;
    const avatar = li.querySelector(".avatar") || el("div", "avatar"); // kept: its photo stays loaded
    paintAvatar(avatar, {
      id: conv.id,
      name: title,
      online: presence?.status === "online",
      photo: conv.kind === "dm" ? this.store.avatarOf(conv.id) : null,
      media: this.media,
    });
    const main = el("div", "chat-main");
    const top = el("div", "chat-row");
    const last = [...conv.items].reverse().find((i) => i.kind === "msg" || i.kind === "system");
    top.append(el("span", "chat-name", title), el("span", "chat-time", last ? listTime(last.ts) : ""));
    const bottom = el("div", "chat-row");
    const preview = el("span", "chat-preview");
    if (this.store.isTyping(conv.id)) {
      preview.classList.add("typing");
      preview.textContent = "typing…";
    } else if (last && last.kind === "msg") {
      if (last.from === this.me) {
        const mark = tick(last);
        if (mark) preview.append(mark);
      } else if (conv.kind === "group") {
        preview.append(`${this.store.nameOf(last.from)}: `);
      }
      const label = last.media || last.upload ? mediaLabel(last.media, last.upload) : "";
      const text = label ? `${label}${last.text ? ": " + last.text : ""}` : last.text;
      preview.append(last.deleted ? "This message was deleted" : text);
    } else if (last) {
      preview.textContent = last.text;
    } else {
      preview.textContent = conv.kind === "group" ? "" : "No messages yet";
    }
    bottom.append(preview);
    if (conv.unread > 0) bottom.append(el("span", "badge", String(conv.unread)));
    main.append(top, bottom);
    li.replaceChildren(avatar, main);
  }

  // ---------------------------------------------------------------- conversation
  renderConversation({ toEnd = false } = {}) {
    const conv = this.openId === null ? null : this.store.conversation(this.openId, { create: false });
    $("no-conversation").hidden = conv !== null;
    $("conv-header").hidden = conv === null;
    $("messages").hidden = conv === null;
    if (!conv) {
      $("composer").hidden = true;
      $("composer-closed").hidden = true;
      return;
    }
    this.renderHeader(conv);
    this.renderMessages({ toEnd });
  }

  renderHeader(conv) {
    const title = this.store.titleOf(conv);
    $("conv-title").textContent = title;
    $("conv-handle").textContent = title === conv.id ? "" : conv.id; // the user id beside a display name
    const about = conv.kind === "dm" ? this.store.profiles.get(conv.id)?.about : null;
    $("conv-header").querySelector(".who").title = about || "";
    const presence = conv.kind === "dm" ? this.store.presence.get(conv.id) : null;
    paintAvatar($("conv-avatar"), {
      id: conv.id,
      name: title,
      online: presence?.status === "online",
      photo: conv.kind === "dm" ? this.store.avatarOf(conv.id) : null,
      media: this.media,
    });
    const status = $("conv-status");
    status.classList.remove("typing");
    status.dataset.presence = presence ? presence.status : "";
    if (conv.kind === "dm") {
      if (this.store.isTyping(conv.id)) {
        status.textContent = "typing…";
        status.classList.add("typing");
      } else if (presence) {
        const seen = presence.lastSeen === null ? "offline" : lastSeen(presence.lastSeen); // hidden: privacy
        status.textContent = presence.status === "online" ? "online" : seen;
      } else {
        status.textContent = "";
      }
    } else {
      const names = conv.members.map((m) => (m === this.me ? "You" : this.store.nameOf(m)));
      names.sort((a, b) => (a === "You") - (b === "You") || a.localeCompare(b));
      status.textContent = conv.left ? "You are no longer a member" : names.join(", ");
    }
    const closed = conv.kind === "group" && conv.left;
    $("composer").hidden = closed;
    $("composer-closed").hidden = !closed;
    this.renderTimer(conv, closed);
    this.renderBlocking(conv);
  }

  // ---------------------------------------------------------------- disappearing messages
  /** The header's timer control: the conversation's timer; a group's is its admins' to change. */
  renderTimer(conv, closed) {
    const select = $("conv-timer");
    const values = [0, ...this.timers];
    const current = conv.timer || 0;
    if (!values.includes(current)) values.push(current);
    const wanted = values.map(String).join(",");
    if (select.dataset.values !== wanted) {
      select.dataset.values = wanted;
      select.replaceChildren(
        ...values.map((v) => {
          const option = el("option", null, v ? `⏱ ${timerLabel(v)}` : "⏱ Off");
          option.value = String(v);
          return option;
        }),
      );
    }
    select.value = String(current);
    const admin = conv.kind !== "group" || conv.admins?.includes(this.me);
    select.disabled = closed || !admin;
    select.title = admin ? "Disappearing messages" : "Disappearing messages: only admins can change this";
    select.classList.toggle("on", current > 0);
  }

  onTimerPicked() {
    const conv = this.openId === null ? null : this.store.convs.get(this.openId);
    if (!conv) return;
    const seconds = Number($("conv-timer").value);
    $("conv-timer").value = String(conv.timer || 0); // until the server's `timer` event says so
    if (seconds !== (conv.timer || 0)) this.actions.setTimer(conv.id, seconds);
  }

  /** Block/Unblock and Report in a 1-on-1 chat's header, and the notice while I block them. */
  renderBlocking(conv) {
    const dm = conv.kind === "dm";
    const blocked = dm && this.store.blocked.has(conv.id);
    $("block-toggle").hidden = !dm;
    $("block-toggle").textContent = blocked ? "Unblock" : "Block";
    $("report-contact").hidden = !dm;
    $("blocked-notice").hidden = !blocked;
  }

  bindBlocking(on) {
    const peer = () => {
      const conv = this.openId === null ? null : this.store.convs.get(this.openId);
      return conv && conv.kind === "dm" ? conv.id : null;
    };
    on($("block-toggle"), "click", () => {
      const user = peer();
      if (user) this.actions.setBlocked(user, !this.store.blocked.has(user));
    });
    on($("blocked-unblock"), "click", () => {
      const user = peer();
      if (user) this.actions.setBlocked(user, false);
    });
    on($("report-contact"), "click", () => {
      if (!peer()) return;
      this.openDialog("report-dialog", "report-reason");
      $("report-block").checked = !this.store.blocked.has(peer());
    });
    on($("report-form"), "submit", () => {
      const user = peer();
      if (user) this.actions.report(user, $("report-reason").value.trim(), $("report-block").checked);
    });
  }

  renderMessages({ toEnd = false, keepFromBottom = false }) {
    const conv = this.store.convs.get(this.openId);
    if (!conv) return;
    const box = $("messages");
    const fromBottom = box.scrollHeight - box.scrollTop;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < STICK_TO_BOTTOM_PX;
    const count = this.viewCount.get(conv.id) || PAGE;
    const items = conv.items.slice(-count);
    const hidden = conv.items.length - items.length;
    const older = hidden > 0 || conv.olderMore === true;
    $("history-top").textContent = older ? "Scroll up for older messages" : "";

    const desired = [];
    let previous = null;
    for (const item of items) {
      const dk = dayKey(item.ts);
      if (!previous || dayKey(previous.ts) !== dk) {
        desired.push(this.node(`d:${dk}`, () => el("div", "day"), (n) => (n.textContent = day(item.ts))));
      }
      if (item.kind === "system") {
        desired.push(this.node(item.key, () => el("div", "system"), (n) => (n.textContent = item.text)));
      } else {
        const first =
          !previous || previous.kind !== "msg" || previous.from !== item.from || dayKey(previous.ts) !== dk;
        desired.push(this.node(item.key, () => el("div", "msg"), (n) => this.fillMessage(n, item, conv, first)));
      }
      previous = item;
    }
    const list = $("message-list");
    const wanted = new Set(desired);
    let cursor = list.firstChild;
    for (const node of desired) {
      if (node !== cursor) list.insertBefore(node, cursor);
      else cursor = cursor.nextSibling;
    }
    while (cursor) {
      const next = cursor.nextSibling;
      if (!wanted.has(cursor)) cursor.remove();
      cursor = next;
    }
    for (const [key, node] of this.nodes) if (!wanted.has(node)) this.nodes.delete(key);

    if (keepFromBottom) box.scrollTop = box.scrollHeight - fromBottom;
    else if (toEnd || atBottom) box.scrollTop = box.scrollHeight;
  }

  node(key, create, fill) {
    let node = this.nodes.get(key);
    if (!node) {
      node = create();
      node.dataset.key = key;
      this.nodes.set(key, node);
    }
    fill(node);
    return node;
  }

  fillMessage(node, item, conv, first) {
    const mine = item.from === this.me;
    const showSender = !mine && conv.kind === "group" && first;
    const senderName = showSender ? this.store.nameOf(item.from) : null;
    const signature = JSON.stringify([
      item.status, item.text, item.id, item.media?.key, !!item.localPreview, !!item.upload, item.error,
      first, senderName, item.by, !!item.deleted, item.reactions, item.editedAt,
      conv.admins?.includes(this.me), item.reply, !!item.forwarded, item.expiresAt,
    ]);
    if (node.dataset.signature === signature) return;
    node.dataset.signature = signature;
    node.className = `msg ${mine ? "out" : "in"}${first ? " first" : ""}`;
    node.dataset.status = item.status;
    if (item.id) node.dataset.id = item.id;
    if (item.ref) node.dataset.ref = item.ref;
    const parts = [];
    if (showSender) {
      const sender = el("div", "sender", senderName);
      if (senderName !== item.from) sender.title = item.from;
      sender.style.color = colorOf(item.from);
      parts.push(sender);
    }
    if (item.forwarded && !item.deleted) parts.push(el("div", "forwarded-label", "↪ Forwarded"));
    if (item.reply && !item.deleted) parts.push(quoteNode(item.reply, (u) => (u === this.me ? "You" : this.store.nameOf(u))));
    const attachment = attachmentKind(item.media, item.upload);
    const hasMedia = Boolean(item.media || item.upload) && !attachment;
    if (hasMedia) parts.push(this.mediaNode(node, item));
    else if (attachment) parts.push(this.attachmentNode(node, item, attachment));
    node.classList.toggle("media-only", hasMedia && !item.text);
    const meta = el("span", "meta");
    if (item.editedAt && !item.deleted) {
      const mark = el("span", "edited", "edited");
      mark.title = `Edited at ${clock(item.editedAt)}`;
      meta.append(mark);
    }
    if (item.expiresAt && !item.deleted) {
      const mark = el("span", "disappears", "⏱");
      mark.title = `Disappears at ${clock(item.expiresAt)}`;
      meta.append(mark);
    }
    meta.append(el("span", "time", clock(item.ts)));
    if (mine) {
      const mark = tick(item);
      if (mark) meta.append(mark);
      const title = receiptsTitle(item);
      if (title) meta.title = title;
    }
    if (item.deleted) {
      parts.push(el("span", "text deleted", "This message was deleted"));
    } else if (item.text) {
      const text = el("span", "text", item.text);
      parts.push(text);
    }
    parts.push(meta);
    const chips = item.deleted ? null : reactionChips(item, this.me, (u) => this.store.nameOf(u));
    if (chips) parts.push(chips);
    const actions = messageActions(item, this.me);
    if (actions) parts.push(actions);
    const admin = conv.kind === "group" && !!conv.admins?.includes(this.me);
    const changes = changeActions(item, { mine, admin });
    if (changes) parts.push(changes);
    if (item.status === "failed") {
      const note = el("div", "failed-note", `Not sent: ${item.error || "failed"}`);
      const retry = el("button", "retry", "Retry");
      retry.type = "button";
      note.append(retry);
      parts.push(note);
    }
    node.replaceChildren(...parts);
  }

  /** The picture of a message: the local preview while uploading, else the server's thumbnail. */
  mediaNode(node, item) {
    const media = item.media;
    const source = item.upload?.previewUrl || item.localPreview || null;
    const key = source || media?.thumbnail?.key || (media?.type.startsWith("image/") ? media.key : null);
    const cacheKey = `${key}|${!!item.upload}`;
    if (node._media && node._mediaKey === cacheKey) return node._media;
    const box = el("div", "media");
    const isVideo = (media?.type || item.upload?.type || "").startsWith("video/");
    const w = media?.width || item.upload?.width || 320;
    const h = media?.height || item.upload?.height || 240;
    const width = Math.max(MEDIA_MIN_WIDTH, Math.min(MEDIA_MAX_WIDTH, w));
    box.style.width = `${width}px`;
    box.style.aspectRatio = `${w} / ${Math.max(1, Math.min(h, w * 2.5))}`;
    if (key && !(isVideo && source)) {
      const img = el("img");
      img.alt = mediaLabel(media);
      img.decoding = "async";
      img.addEventListener("load", () => this.keepAtBottom());
      if (source) img.src = source;
      else {
        this.media.url(key).then(
          (url) => (img.src = url),
          (error) => (img.alt = `${img.alt} (${error.message})`),
        );
      }
      box.append(img);
    } else if (isVideo && source) {
      const video = el("video");
      video.src = source;
      video.muted = true;
      box.append(video);
    }
    if (isVideo && !item.upload) box.append(el("div", "play", "▶"));
    if (item.upload && item.status === "pending") {
      const overlay = el("div", "uploading");
      overlay.append(el("div", "spinner"));
      box.append(overlay);
    }
    node._media = box;
    node._mediaKey = cacheKey;
    return box;
  }

  /** A voice note's player or a document's card (kept while the message does not change). */
  attachmentNode(node, item, kind) {
    const cacheKey = `${kind}|${item.media?.key}|${!!item.upload}`;
    if (node._attachment && node._attachmentKey === cacheKey) return node._attachment;
    const make = kind === "voice" ? voiceNode : documentNode;
    const box = make({ media: item.media, upload: item.upload, api: this.media, onLoad: () => this.keepAtBottom() });
    if (item.upload && item.status === "pending") box.classList.add("pending-upload");
    node._attachment = box;
    node._attachmentKey = cacheKey;
    return box;
  }

  keepAtBottom() {
    const box = $("messages");
    if (box.scrollHeight - box.scrollTop - box.clientHeight < STICK_TO_BOTTOM_PX * 4) {
      box.scrollTop = box.scrollHeight;
    }
  }

  onScroll() {
    if (this.openId === null) return;
    const box = $("messages");
    const conv = this.store.convs.get(this.openId);
    const count = this.viewCount.get(this.openId) || PAGE;
    if (box.scrollTop < 60 && conv && conv.items.length > count) {
      this.viewCount.set(this.openId, count + PAGE);
      this.renderMessages({ keepFromBottom: true });
    } else if (box.scrollTop < 60 && conv && conv.olderMore !== false) {
      this.actions.loadOlder(this.openId); // everything here is shown: ask the server for older ones
    }
  }

  /** A history page was asked for (see `historyDone`). */
  historyLoading(convId) {
    if (convId === this.openId) $("history-top").textContent = "Loading older messages…";
  }

  /** A history page came (or failed): show it, keeping the place when older messages came in. */
  historyDone(convId, older) {
    if (convId !== this.openId) return;
    const conv = this.store.convs.get(convId);
    if (older && conv) this.viewCount.set(convId, Math.max(this.viewCount.get(convId) || PAGE, conv.items.length));
    $("history-top").textContent = "";
    this.renderMessages({ keepFromBottom: older });
    if (older) this.onScroll(); // still at the top (a short page): the next one
  }

  onMessageClick(event) {
    const node = event.target.closest(".msg");
    if (!node) return;
    const item = this.itemOf(node);
    if (!item) return;
    if (event.target.closest(".retry")) {
      this.actions.retry(item);
      return;
    }
    const chip = event.target.closest(".reaction-chip");
    if (chip) {
      this.toggleReaction(item, chip.dataset.emoji);
      return;
    }
    const change = event.target.closest(".actions button")?.dataset.action;
    if (change) {
      this.onChangeAction(item, change);
      return;
    }
    const action = event.target.closest("[data-action]");
    if (action) {
      this.runAction(node, item, action);
      return;
    }
    const quote = event.target.closest(".quote");
    if (quote) {
      this.showOriginal(quote.dataset.quoted);
      return;
    }
    if (event.target.closest(".media")) this.view(item);
  }

  /** A button of a message's toolbar (see messageActions). */
  runAction(node, item, button) {
    switch (button.dataset.action) {
      case "react-open": {
        const picker = node.querySelector(".react-picker");
        if (picker) picker.hidden = !picker.hidden;
        break;
      }
      case "react":
        button.closest(".react-picker").hidden = true;
        this.toggleReaction(item, button.dataset.emoji);
        break;
      case "reply":
        this.startReply(item);
        break;
      case "forward":
        this.openForward(item);
        break;
      default:
        break;
    }
  }

  /** React with `emoji`, or take my reaction back when it is already `emoji`. */
  toggleReaction(item, emoji) {
    const mine = (item.reactions || {})[this.me];
    this.actions.react(item, mine === emoji ? "" : emoji);
  }

  /** A button of a bubble's changes bar (see changeActions). */
  onChangeAction(item, action) {
    if (action === "edit") {
      this.editing = item;
      $("edit-text").value = item.text;
      $("edit-dialog").showModal();
    } else if (action === "delete-everyone") {
      this.actions.deleteMessage(item, true);
    } else if (action === "delete-me") {
      this.actions.deleteMessage(item, false);
    }
  }

  /** The edit dialog's Save: the new text goes to the server; the bubble changes on `edited`. */
  saveEdit() {
    const item = this.editing;
    this.editing = null;
    const text = $("edit-text").value.trim();
    if (item && text && text !== item.text) this.actions.editMessage(item, text);
  }

  /** Scroll to the message a quote shows, when this page has it loaded, and make it flash. */
  showOriginal(messageId) {
    const conv = this.store.convs.get(this.openId);
    const index = conv ? conv.items.findIndex((i) => i.id === messageId) : -1;
    if (index < 0) {
      this.toast("The original message is not loaded here");
      return;
    }
    const count = this.viewCount.get(this.openId) || PAGE;
    if (conv.items.length - index > count) {
      this.viewCount.set(this.openId, conv.items.length - index);
      this.renderMessages({ keepFromBottom: true });
    }
    const node = [...$("message-list").querySelectorAll(".msg")].find((n) => n.dataset.id === messageId);
    if (!node) return;
    node.scrollIntoView({ block: "center" });
    node.classList.remove("flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("flash");
  }

  // ---------------------------------------------------------------- reply and forward
  /** Answer `item`: the composer shows what is quoted until the reply is sent or cancelled. */
  startReply(item) {
    this.replyingTo = item;
    const bar = $("reply-bar");
    const who = item.from === this.me ? "You" : this.store.nameOf(item.from);
    const excerpt = (item.text || "").slice(0, 100);
    $("reply-bar-quote").replaceChildren(
      quoteNode({ id: item.id, from: item.from, excerpt, mediaType: item.media?.type || null }, () => who),
    );
    bar.hidden = false;
    bar.dataset.replyTo = item.id;
    $("composer-text").focus();
  }

  /** The message the next one answers (its id), or null; `clear` forgets it (it was sent). */
  replyTarget({ clear = false } = {}) {
    const id = this.replyingTo?.id || null;
    if (clear) this.cancelReply();
    return id;
  }

  cancelReply() {
    this.replyingTo = null;
    $("reply-bar").hidden = true;
    $("reply-bar-quote").replaceChildren();
  }

  /** Pick a chat to send `item` on to. */
  openForward(item) {
    this.forwarding = item;
    const rows = this.store
      .sortedConversations()
      .filter((conv) => !(conv.kind === "group" && conv.left))
      .map((conv) => {
        const li = el("li", "forward-target");
        const button = el("button", "forward-pick");
        button.type = "button";
        button.dataset.conv = conv.id;
        const avatar = el("div", "avatar");
        const title = this.store.titleOf(conv);
        paintAvatar(avatar, { id: conv.id, name: title, photo: conv.kind === "dm" ? this.store.avatarOf(conv.id) : null, media: this.media });
        button.append(avatar, el("span", "forward-name", title));
        li.append(button);
        return li;
      });
    $("forward-list").replaceChildren(...rows);
    $("forward-empty").hidden = rows.length > 0;
    $("forward-dialog").showModal();
  }

  onForwardPick(event) {
    const pick = event.target.closest(".forward-pick");
    if (!pick || !this.forwarding) return;
    const item = this.forwarding;
    this.forwarding = null;
    $("forward-dialog").close();
    if (this.actions.forward(item, pick.dataset.conv)) this.toast(`Forwarded to ${this.store.titleOf(this.store.convs.get(pick.dataset.conv))}`);
  }

  itemOf(node) {
    const conv = this.store.convs.get(this.openId);
    return conv ? conv.items.find((i) => i.key === node.dataset.key) : null;
  }

  /** Show a photo or video full size. */
  view(item) {
    const body = $("viewer-body");
    body.replaceChildren(el("div", "spinner"));
    $("viewer-caption").textContent = item.text || "";
    $("viewer-dialog").showModal();
    const show = (url) => {
      const isVideo = (item.media?.type || item.upload?.type || "").startsWith("video/");
      const node = el(isVideo ? "video" : "img");
      node.src = url;
      if (isVideo) {
        node.controls = true;
        node.autoplay = true;
      } else node.alt = item.text || "Photo";
      body.replaceChildren(node);
    };
    const local = item.upload?.previewUrl || item.localPreview;
    if (local) show(local);
    else if (item.media) {
      this.media.url(item.media.key).then(show, (error) => body.replaceChildren(el("p", "", error.message)));
    }
  }

  // ---------------------------------------------------------------- my profile
  openProfile() {
    const mine = this.store.profiles.get(this.me);
    $("profile-form").reset();
    $("profile-name").value = mine?.name || "";
    $("profile-about").value = mine?.about || "";
    $("profile-status").textContent = "";
    $("profile-error").textContent = "";
    $("profile-dialog").showModal();
    this.renderMe();
    $("profile-name").focus();
  }

  saveProfile() {
    const mine = this.store.profiles.get(this.me);
    const name = $("profile-name").value.trim();
    const about = $("profile-about").value.trim();
    if (name.length > MAX_NAME_LENGTH || about.length > MAX_ABOUT_LENGTH) {
      this.profileError(`A name has at most ${MAX_NAME_LENGTH} characters, an about text ${MAX_ABOUT_LENGTH}`);
      return;
    }
    // only what changed; an empty field clears it
    const change = {};
    if (name !== (mine?.name || "")) change.name = name;
    if (about !== (mine?.about || "")) change.about = about;
    if (!Object.keys(change).length) {
      this.profileDone("Nothing to save");
      return;
    }
    this.profileBusy(this.actions.saveProfile(change), "Saving…");
  }

  /** An action was started (true) or refused at once (false, it said why). */
  profileBusy(started, text) {
    if (!started) return;
    $("profile-error").textContent = "";
    $("profile-status").textContent = text;
  }

  /** A change of my profile was applied (its `profile` event came back). */
  profileDone(text = "Saved") {
    $("profile-error").textContent = "";
    $("profile-status").textContent = text;
    this.renderMe();
  }

  profileError(message) {
    $("profile-status").textContent = "";
    $("profile-error").textContent = message;
    if (!$("profile-dialog").open) this.toast(message);
  }

  // ---------------------------------------------------------------- my devices
  openDevices() {
    $("devices-list").replaceChildren();
    $("devices-status").textContent = "Loading…";
    $("devices-dialog").showModal();
    if (!this.actions.listDevices()) $("devices-status").textContent = "Offline: try again when connected";
  }

  /** The `devices` answer: each device, when first and last seen, its platform; `own` is this one. */
  showDevices(devices, own) {
    if (!$("devices-dialog").open) return;
    $("devices-status").textContent = devices.length ? "" : "No devices";
    const rows = devices.map((d) => {
      const li = el("li", "device");
      li.dataset.device = d.device;
      const main = el("div", "device-main");
      const name = el("div", "device-name", d.device);
      if (d.device === own) {
        li.classList.add("own");
        name.append(el("span", "this-device", "this browser"));
      }
      const facts = [d.platform || "no push platform"];
      if (d.firstSeen !== null) facts.push(`first seen ${seenAt(d.firstSeen)}`);
      main.append(name, el("div", "device-sub", facts.join(" · ")));
      const state = d.online ? "online" : d.lastSeen !== null ? lastSeen(d.lastSeen) : "offline";
      li.append(main, el("span", `state${d.online ? " online" : ""}`, state));
      return li;
    });
    $("devices-list").replaceChildren(...rows);
  }

  devicesError(message) {
    if ($("devices-dialog").open) $("devices-status").textContent = message;
    else this.toast(message);
  }

  // ---------------------------------------------------------------- composing
  submitText() {
    const box = $("composer-text");
    const text = box.value.trim();
    if (!text) return;
    if (this.actions.send(text, this.replyTarget())) {
      this.cancelReply();
      box.value = "";
      this.autosize();
      this.renderMessages({ toEnd: true });
    }
  }

  autosize() {
    const box = $("composer-text");
    box.style.height = "auto";
    box.style.height = `${Math.min(box.scrollHeight, 120)}px`;
  }

  pickMedia(file) {
    const kind = uploadKindOf(file);
    if (kind) {
      this.pickAttachment(file, kind);
      return;
    }
    this.dropMediaPreview();
    this.pending = { file, previewUrl: URL.createObjectURL(file), type: file.type };
    const isVideo = file.type.startsWith("video/");
    $("media-title").textContent = isVideo ? "Send a video" : "Send a photo";
    const preview = el(isVideo ? "video" : "img");
    preview.src = this.pending.previewUrl;
    if (isVideo) preview.controls = true;
    else {
      preview.alt = file.name;
      preview.addEventListener("load", () => {
        if (this.pending) {
          this.pending.width = preview.naturalWidth;
          this.pending.height = preview.naturalHeight;
        }
      });
    }
    $("media-preview").replaceChildren(preview);
    $("media-form").reset();
    $("media-dialog").showModal();
    $("media-caption").focus();
  }

  /** A voice note (audio) or a document (anything else) to send, shown before it goes. */
  pickAttachment(file, kind, { sendNow = false } = {}) {
    this.dropMediaPreview();
    const previewUrl = kind === "voice" ? URL.createObjectURL(file) : undefined;
    this.pending = { file, previewUrl, type: file.type, kind, name: file.name || null };
    if (sendNow) {
      const pending = this.pending;
      this.pending = null; // the preview URL now belongs to the message
      this.actions.sendMedia(pending, "");
      this.renderMessages({ toEnd: true });
      return;
    }
    $("media-title").textContent = kind === "voice" ? "Send a voice message" : "Send a document";
    const preview =
      kind === "voice"
        ? voiceNode({ media: null, upload: this.pending, api: this.media })
        : documentNode({ media: null, upload: this.pending, api: this.media });
    preview.querySelector(".download")?.remove(); // nothing to download yet
    $("media-preview").replaceChildren(preview);
    $("media-form").reset();
    $("media-dialog").showModal();
    $("media-caption").focus();
  }

  /** The microphone button: the first click records, the second sends the recording. */
  async toggleRecording() {
    const button = $("record-button");
    if (this.recorder) {
      const recorder = this.recorder;
      this.recorder = null;
      button.classList.remove("recording");
      button.title = "Record a voice message";
      const blob = await recorder.stop();
      const ext = blob.type.includes("ogg") ? "ogg" : blob.type.includes("mp4") ? "m4a" : "webm";
      const file = new File([blob], `voice.${ext}`, { type: blob.type });
      if (this.openId !== null && file.size) this.pickAttachment(file, "voice", { sendNow: true });
      return;
    }
    const recorder = new VoiceRecorder();
    try {
      await recorder.start();
    } catch (error) {
      this.toast(`The microphone is not available (${error.message})`);
      return;
    }
    this.recorder = recorder;
    button.classList.add("recording");
    button.title = "Stop and send";
  }

  sendMedia() {
    const pending = this.pending;
    this.pending = null; // the preview URL now belongs to the message
    if (pending) this.actions.sendMedia(pending, $("media-caption").value.trim(), this.replyTarget({ clear: true }));
    this.renderMessages({ toEnd: true });
  }

  dropMediaPreview() {
    if (this.pending?.previewUrl) URL.revokeObjectURL(this.pending.previewUrl);
    this.pending = null;
    $("media-preview").replaceChildren();
  }
}
