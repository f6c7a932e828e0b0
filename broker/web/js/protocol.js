// The mqchat wire contract, version 1, as the web client uses it (docs/protocol.md).
// Pure functions and constants: no I/O.

export const VERSION = 1;
export const USER_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
export const GROUP_ID_RE = /^g:[A-Za-z0-9_-]{1,60}$/;
export const SEQUENCED_TYPES = new Set([
  "message",
  "sent",
  "receipt",
  "group",
  "deleted",
  "profile",
  "reaction",
  "edited",
  "hidden",
  "group_request", // a request to join a group (to its admins and the requester)
  "timer", // disappearing messages
  "expired",
  "privacy", // a privacy answer without a cursor (privacy_get) is live: see session.js
  "group_invitation",
  "blocking",
  "read",
]);
/** Error codes that refuse a command only for now: send it again a little later. */
export const TRANSIENT_CODES = new Set(["rate_limited", "busy"]);
export const MAX_RECEIPT_MESSAGES = 500;
export const SYNC_LIMIT = 200;
export const MAX_TEXT_LENGTH = 65536;
export const MAX_CAPTION_LENGTH = 1024;
export const MAX_NAME_LENGTH = 64;
export const MAX_ABOUT_LENGTH = 140;
export const MAX_PROFILE_USERS = 256;
export const STATUS_RANK = { pending: 0, sent: 1, delivered: 2, read: 3 };

export const isUserId = (id) => typeof id === "string" && USER_ID_RE.test(id);
export const isGroupId = (id) => typeof id === "string" && GROUP_ID_RE.test(id);

/** A fresh command id: 1-64 characters of [A-Za-z0-9_.:-], unique per sender. */
export function newId(prefix = "w") {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  const random = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${prefix}-${Date.now().toString(36)}-${random}`;
}

/** The topics of one server (its `topics.prefix` and `topics.presence_prefix`). */
export class Topics {
  constructor(prefix = "chat", presencePrefix = "presence") {
    this.prefix = prefix;
    this.presencePrefix = presencePrefix;
  }
  inbox(user) {
    return `${this.prefix}/${user}/in`;
  }
  outbox(user) {
    return `${this.prefix}/${user}/out`;
  }
  presence(user) {
    return `${this.presencePrefix}/${user}`;
  }
  /** The user of a presence topic, or null. */
  presenceUser(topic) {
    const head = `${this.presencePrefix}/`;
    if (!topic.startsWith(head)) return null;
    const user = topic.slice(head.length);
    return isUserId(user) ? user : null;
  }
}

// ------------------------------------------------------------------ commands
const command = (type, id, fields) => ({ v: VERSION, type, id, ...fields });

export const sendCommand = ({ id, to, text, replyTo }) =>
  command("send", id, replyTo ? { to, text, reply_to: replyTo } : { to, text });
export const forwardCommand = ({ id, message, to }) => command("forward", id, { message, to });
/** The command of an outgoing message (see Session.outbox): a forward, or a send (maybe a reply). */
export const outgoingCommand = (o) =>
  o.forward ? forwardCommand({ id: o.id, message: o.forward, to: o.to }) : sendCommand(o);
export const syncCommand = ({ id, after, limit = SYNC_LIMIT }) => command("sync", id, { after, limit });
export const typingCommand = ({ id, to, composing }) =>
  command("typing", id, { to, state: composing ? "composing" : "paused" });
export const groupCreateCommand = ({ id, name, members }) => command("group_create", id, { name, members });
export const groupListCommand = ({ id }) => command("group_list", id, {});
export const groupAddCommand = ({ id, group, members }) => command("group_add", id, { group, members });
export const groupLeaveCommand = ({ id, group }) => command("group_leave", id, { group });
export const groupRenameCommand = ({ id, group, name }) => command("group_rename", id, { group, name });
/** `profile_set`: a field left undefined stays as it is, an empty string clears it. */
export function profileSetCommand({ id, name, about }) {
  const fields = {};
  if (name !== undefined) fields.name = name;
  if (about !== undefined) fields.about = about;
  return command("profile_set", id, fields);
}
export const profileGetCommand = ({ id, users }) => command("profile_get", id, { users });
export const devicesCommand = ({ id }) => command("devices", id, {});
/** `search`: my messages with every word of `query` as a word's start, newest first. */
export const searchCommand = ({ id, query, conversation, before, limit }) =>
  command("search", id, {
    query,
    ...(conversation ? { conversation } : {}),
    ...(before ? { before } : {}),
    ...(limit ? { limit } : {}),
  });
/** `react`: my reaction to a message; an empty emoji removes it. */
export const reactCommand = ({ id, message, emoji }) => command("react", id, { message, emoji });
// blocking and reports (docs/protocol.md, "Blocking and reports")
export const blockCommand = ({ id, user }) => command("block", id, { user });
export const unblockCommand = ({ id, user }) => command("unblock", id, { user });
export const blocksCommand = ({ id }) => command("blocks", id, {});
export const MAX_REPORTED_MESSAGES = 50;
export function reportCommand({ id, user, messages = [], reason = "", block = false }) {
  const fields = { user };
  if (messages.length) fields.messages = [...new Set(messages)].slice(-MAX_REPORTED_MESSAGES);
  if (reason) fields.reason = reason.slice(0, 1000);
  if (block) fields.block = true;
  return command("report", id, fields);
}
/** `edit`: new text (or caption) for a message I sent. */
export const editCommand = ({ id, message, text }) => command("edit", id, { message, text });
/** `delete`: a message for everyone, or only from my own devices (`everyone` false). */
// disappearing messages: a conversation's timer (seconds, 0: off)
export const timerSetCommand = ({ id, to, seconds }) => command("timer_set", id, { to, seconds });
export const timerGetCommand = ({ id, to }) => command("timer_get", id, { to });

/** "24 hours", "7 days", "2 seconds": a timer as the chat shows it. */
export function timerLabel(seconds) {
  const units = [
    [86400, "day"],
    [3600, "hour"],
    [60, "minute"],
    [1, "second"],
  ];
  if (!seconds) return "off";
  if (seconds === 86400) return "24 hours";
  for (const [size, name] of units) {
    if (seconds % size === 0) {
      const n = seconds / size;
      return `${n} ${name}${n === 1 ? "" : "s"}`;
    }
  }
  return `${seconds} seconds`;
}

export const deleteCommand = ({ id, message, everyone }) =>
  command("delete", id, { message, for: everyone ? "everyone" : "me" });

// group settings, invite links and join requests
/** `group_set`: the settings given (undefined: left as they are); `removeIcon` removes the icon. */
export function groupSetCommand({ id, group, description, onlyAdminsSend, approval, removeIcon }) {
  const fields = { group };
  if (description !== undefined) fields.description = description;
  if (onlyAdminsSend !== undefined) fields.only_admins_send = onlyAdminsSend;
  if (approval !== undefined) fields.approval = approval;
  if (removeIcon) fields.remove_icon = true;
  return command("group_set", id, fields);
}
export const groupInviteLinkCommand = ({ id, group, revoke = false }) =>
  command("group_invite_link", id, revoke ? { group, revoke: true } : { group });
export const INVITE_CODE_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const groupJoinCommand = ({ id, code }) => command("group_join", id, { code });
export const groupRequestsCommand = ({ id, group }) => command("group_requests", id, { group });
export const groupDecideCommand = ({ id, group, member, approve }) =>
  command(approve ? "group_approve" : "group_reject", id, { group, member });

/** `receipt` commands for these message ids, at most 500 ids each. */
export function receiptCommands({ status, messages, newCommandId = newId }) {
  const unique = [...new Set(messages)];
  const out = [];
  for (let i = 0; i < unique.length; i += MAX_RECEIPT_MESSAGES) {
    out.push(command("receipt", newCommandId("r"), { status, messages: unique.slice(i, i + MAX_RECEIPT_MESSAGES) }));
  }
  return out;
}

// ------------------------------------------------------------------ events
/** The cursor of a sequenced inbox event, or null when it has none. */
export function cursorOf(event) {
  const cursor = event && event.cursor;
  return Number.isInteger(cursor) && cursor >= 1 ? cursor : null;
}

function isMessage(m) {
  return (
    m !== null &&
    typeof m === "object" &&
    typeof m.id === "string" &&
    typeof m.conversation === "string" &&
    Number.isInteger(m.seq) &&
    isUserId(m.from) &&
    (isUserId(m.to) || isGroupId(m.to)) &&
    (typeof m.text === "string" || m.deleted === true || m.hidden === true || m.expired === true) && // stubs: no text
    typeof m.ts === "number"
  );
}

function isGroup(g) {
  return (
    g !== null &&
    typeof g === "object" &&
    isGroupId(g.id) &&
    typeof g.name === "string" &&
    Array.isArray(g.members) &&
    Array.isArray(g.admins)
  );
}

/** Whether a sequenced event has the shape this client needs (unknown or broken ones are skipped). */
export function isReadableSequenced(event) {
  if (event === null || typeof event !== "object" || event.v !== VERSION || cursorOf(event) === null) {
    return false;
  }
  switch (event.type) {
    case "message":
      return isMessage(event.message);
    case "sent":
      return typeof event.ref === "string" && isMessage(event.message);
    case "receipt":
      return (
        (event.status === "delivered" || event.status === "read") &&
        typeof event.message_id === "string" &&
        isUserId(event.by) &&
        (event.also_by === undefined || (Array.isArray(event.also_by) && event.also_by.every(isUserId))) &&
        typeof event.all === "boolean"
      );
    case "group":
      return typeof event.action === "string" && isGroup(event.group) && isUserId(event.by);
    case "deleted":
      return typeof event.message_id === "string" && isMessage(event.message);
    case "profile":
      return parseProfile(event.profile) !== null;
    case "reaction":
      return typeof event.message_id === "string" && isUserId(event.by) && parseReactions(event.reactions) !== null;
    case "edited":
      return typeof event.message_id === "string" && typeof event.text === "string" && isMessage(event.message);
    case "hidden":
      return typeof event.message_id === "string";
    case "group_request":
      return isGroupId(event.group) && isUserId(event.user) && typeof event.state === "string";
    case "timer":
      return typeof event.conversation === "string" && Number.isInteger(event.seconds) && isUserId(event.by);
    case "expired":
      return Array.isArray(event.messages) && event.messages.every(isMessage);
    case "privacy":
      return parsePrivacy(event.settings) !== null;
    case "group_invitation":
      return parseInvitation(event) !== null;
    case "blocking":
      return isUserId(event.user) && typeof event.blocked === "boolean";
    case "read":
      return typeof event.conversation === "string" && Number.isInteger(event.read_seq);
    default:
      return false;
  }
}

/** A reaction summary ({user: emoji}) as the client keeps it, or null when it is malformed. */
export function parseReactions(r) {
  if (r === undefined || r === null) return {};
  if (typeof r !== "object" || Array.isArray(r)) return null;
  const out = {};
  for (const [user, emoji] of Object.entries(r)) {
    if (!isUserId(user) || typeof emoji !== "string" || emoji === "") return null;
    out[user] = emoji;
  }
  return out;
}

const optionalString = (v) => (typeof v === "string" && v !== "" ? v : null);

/** A profile ({user, name, about, avatar, ts}, each field but `user` possibly null) or null. */
export function parseProfile(p, user = p && p.user) {
  if (p === null || typeof p !== "object" || !isUserId(user)) return null;
  const a = p.avatar;
  const avatar = a && typeof a === "object" && typeof a.key === "string" && a.key ? { key: a.key } : null;
  return {
    user,
    name: optionalString(p.name),
    about: optionalString(p.about),
    avatar,
    ts: typeof p.ts === "number" ? p.ts : 0,
  };
}

/** One of the user's devices in a `devices` answer, or null. */
export function parseDevice(d) {
  if (d === null || typeof d !== "object" || typeof d.device !== "string") return null;
  return {
    device: d.device,
    firstSeen: typeof d.first_seen === "number" ? d.first_seen : null,
    lastSeen: typeof d.last_seen === "number" ? d.last_seen : null,
    platform: optionalString(d.platform),
    online: d.online === true,
  };
}

/** A presence payload ({user, status, last_seen}) or null. */
export function parsePresence(payload) {
  if (
    payload === null ||
    typeof payload !== "object" ||
    payload.type !== "presence" ||
    !isUserId(payload.user) ||
    (payload.status !== "online" && payload.status !== "offline")
  ) {
    return null;
  }
  // no last_seen: the user's privacy settings keep it from their watchers
  const lastSeen = typeof payload.last_seen === "number" ? payload.last_seen : null;
  return { user: payload.user, status: payload.status, lastSeen };
}

/** The value of an HTTP Basic Authorization header for the media API (UTF-8 credentials). */
export function basicAuth(user, secret) {
  const bytes = new TextEncoder().encode(`${user}:${secret}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

// ---------------------------------------------------------------- chat list and read state
export const CHAT_PAGE = 100;
/** `chat_list`: a page of my chats, newest first (`before`: the `next` of the previous page). */
export const chatListCommand = ({ id, limit = CHAT_PAGE, before = null }) =>
  command("chat_list", id, before ? { limit, before } : { limit });
/** The chat (peer user id or group id) a conversation id names, as this client keys its chats. */
export function chatOf(conversation, me) {
  if (isGroupId(conversation)) return conversation;
  if (typeof conversation !== "string" || !conversation.startsWith("dm:")) return null;
  const [first, second] = conversation.slice(3).split(":");
  return first === me ? second : first;
}

// ---------------------------------------------------------------- history
export const HISTORY_PAGE = 50;

/** The wire id of a conversation of the page (a group id, or the other user of a 1-on-1 chat). */
export function wireConversation(me, id) {
  if (isGroupId(id)) return id;
  const [first, second] = [me, id].sort();
  return `dm:${first}:${second}`;
}

/** A `history` command: the latest page (no `before`), or the page before seq `before`. */
export function historyCommand({ id, conversation, before = null, limit = HISTORY_PAGE }) {
  const fields = { conversation, limit };
  if (Number.isInteger(before)) fields.before = before;
  return command("history", id, fields);
}

// -------------------------------------------------------------------- privacy (docs/protocol.md#privacy)
export const AUDIENCES = ["everyone", "contacts", "nobody"];
export const AUDIENCE_SETTINGS = ["last_seen", "online", "photo", "about", "groups"];

/** Privacy settings ({last_seen, online, read_receipts, photo, about, groups}) or null. */
export function parsePrivacy(s) {
  if (s === null || typeof s !== "object" || typeof s.read_receipts !== "boolean") return null;
  const out = { read_receipts: s.read_receipts };
  for (const name of AUDIENCE_SETTINGS) {
    if (!AUDIENCES.includes(s[name])) return null;
    out[name] = s[name];
  }
  return out;
}

/** A `group_invitation` event as the client keeps it ({group, name, by, expires, state}) or null. */
export function parseInvitation(e) {
  if (e === null || typeof e !== "object" || !e.group || !isGroupId(e.group.id) || !isUserId(e.by)) return null;
  if ((e.state !== "invited" && e.state !== "declined") || typeof e.expires !== "number") return null;
  const name = typeof e.group.name === "string" ? e.group.name : e.group.id;
  return { group: e.group.id, name, by: e.by, expires: e.expires, state: e.state };
}

export function privacySetCommand({ id, ...changes }) {
  const out = { v: VERSION, type: "privacy_set", id };
  for (const [name, value] of Object.entries(changes)) {
    if (name === "read_receipts" ? typeof value === "boolean" : AUDIENCES.includes(value)) out[name] = value;
  }
  return out;
}

export const privacyGetCommand = ({ id }) => ({ v: VERSION, type: "privacy_get", id });

export function groupInviteCommand({ id, group, accept }) {
  return { v: VERSION, type: accept ? "group_invite_accept" : "group_invite_decline", id, group };
}
