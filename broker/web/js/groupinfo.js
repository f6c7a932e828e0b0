// Group info: the open group's description, icon and settings (editable by admins), its
// invite link (made, copied and revoked by admins), pending join requests (approved or rejected by
// admins), and joining a group with a code or a link (`#join=<code>`). Wire: docs/protocol.md,
// "Group settings and invite links".

import {
  INVITE_CODE_RE,
  groupDecideCommand,
  groupInviteLinkCommand,
  groupJoinCommand,
  groupRequestsCommand,
  groupSetCommand,
  isGroupId,
  newId,
} from "./protocol.js";

const $ = (id) => document.getElementById(id);

/** The invite link of a code: this page, with the code after `#join=`. */
export const inviteLink = (code) => `${location.origin}${location.pathname}#join=${encodeURIComponent(code)}`;

/** The code of an invite link (or of a bare code pasted as is), or null. */
export function codeOf(text) {
  const value = (text || "").trim();
  const match = /#join=([A-Za-z0-9_-]{1,64})$/.exec(value);
  const code = match ? match[1] : value;
  return INVITE_CODE_RE.test(code) ? code : null;
}

export class GroupInfo {
  /** `run(payload)`: publish a command; `openId()`: the open conversation; `toast(text)`. */
  constructor({ user, store, media, run, openId, toast, synced }) {
    this.user = user;
    this.store = store;
    this.media = media;
    this.run = run;
    this.openId = openId;
    this.toast = toast;
    this.synced = synced;
    this.mine = new Map(); // my command ids -> what they were ("settings", "link", "join", ...)
    this.listening = [];
    const on = (node, kind, handler) => {
      node.addEventListener(kind, handler);
      this.listening.push(() => node.removeEventListener(kind, handler));
    };
    on($("group-info-button"), "click", () => this.show());
    on($("join-group"), "click", () => this.showJoin(""));
    on($("group-info-form"), "submit", (e) => {
      e.preventDefault(); // stays open: the `group` event updates it
      this.save();
    });
    on($("group-icon-input"), "change", () => this.uploadIcon());
    on($("group-icon-remove"), "click", () => this.command("settings", (id) => groupSetCommand({ id, group: this.group(), removeIcon: true })));
    on($("group-invite-make"), "click", () => this.command("link", (id) => groupInviteLinkCommand({ id, group: this.group() })));
    on($("group-invite-revoke"), "click", () => this.command("link", (id) => groupInviteLinkCommand({ id, group: this.group(), revoke: true })));
    on($("group-invite-copy"), "click", () => this.copy());
    on($("group-requests"), "click", (e) => this.onDecide(e));
    on($("join-group-form"), "submit", (e) => {
      if (!this.join($("join-group-code").value)) e.preventDefault();
    });
  }

  destroy() {
    for (const off of this.listening) off();
  }

  group() {
    return $("group-info-dialog").dataset.group || null;
  }

  conv() {
    const id = this.group();
    return id ? this.store.convs.get(id) : null;
  }

  isAdmin(conv) {
    return Boolean(conv && (conv.admins || []).includes(this.user));
  }

  /** After every change: the header button shows for a group I am in; an open panel is redrawn. */
  refresh() {
    const open = this.openId();
    const conv = open && isGroupId(open) ? this.store.convs.get(open) : null;
    $("group-info-button").hidden = !conv || conv.left;
    if ($("group-info-dialog").open) this.render();
  }

  show() {
    const open = this.openId();
    if (!open || !isGroupId(open)) return;
    $("group-info-dialog").dataset.group = open;
    $("group-invite-code").value = "";
    $("group-info-error").textContent = "";
    this.render(true);
    $("group-info-dialog").showModal();
    if (this.isAdmin(this.conv())) this.askRequests();
  }

  render(fresh = false) {
    const conv = this.conv();
    if (!conv) return;
    const settings = conv.settings || { description: "", icon: null, onlyAdminsSend: false, approval: false };
    const admin = this.isAdmin(conv);
    $("group-info-name").textContent = conv.name || conv.id;
    $("group-info-members").textContent = `${(conv.members || []).length} members`;
    if (fresh || !admin) {
      $("group-description").value = settings.description;
      $("group-only-admins").checked = settings.onlyAdminsSend;
      $("group-approval").checked = settings.approval;
    }
    $("group-description").readOnly = !admin;
    for (const id of ["group-only-admins", "group-approval"]) $(id).disabled = !admin;
    for (const node of document.querySelectorAll("#group-info-dialog .admin-only")) node.hidden = !admin;
    const icon = $("group-info-icon");
    icon.replaceChildren();
    icon.dataset.key = settings.icon ? settings.icon.key : "";
    if (settings.icon) {
      const key = settings.icon.key;
      this.media.url(key).then((url) => {
        if (icon.dataset.key !== key) return;
        const img = document.createElement("img");
        img.src = url;
        img.alt = "";
        icon.replaceChildren(img);
      }, () => {});
    } else {
      icon.textContent = (conv.name || "?").slice(0, 1).toUpperCase();
    }
  }

  command(kind, build) {
    const group = this.group();
    if (!group || !this.synced()) {
      this.toast("Offline: try again when connected");
      return null;
    }
    const id = newId("gs");
    this.mine.set(id, kind);
    this.run(build(id));
    return id;
  }

  save() {
    const conv = this.conv();
    if (!conv) return;
    const settings = conv.settings || {};
    const description = $("group-description").value.trim();
    const onlyAdminsSend = $("group-only-admins").checked;
    const approval = $("group-approval").checked;
    const change = {};
    if (description !== (settings.description || "")) change.description = description;
    if (onlyAdminsSend !== Boolean(settings.onlyAdminsSend)) change.onlyAdminsSend = onlyAdminsSend;
    if (approval !== Boolean(settings.approval)) change.approval = approval;
    if (!Object.keys(change).length) {
      $("group-info-status").textContent = "Nothing to change";
      return;
    }
    $("group-info-status").textContent = "Saving…";
    this.command("settings", (id) => groupSetCommand({ id, group: this.group(), ...change }));
  }

  uploadIcon() {
    const input = $("group-icon-input");
    const file = input.files[0];
    input.value = "";
    const group = this.group();
    if (!file || !group) return;
    const id = newId("gi");
    this.mine.set(id, "settings");
    $("group-info-status").textContent = "Uploading the icon…";
    this.media.groupIcon({ group, id, file }).catch((error) => {
      this.mine.delete(id);
      this.fail(`The icon was not changed: ${error.message}`);
    });
  }

  askRequests() {
    this.command("requests", (id) => groupRequestsCommand({ id, group: this.group() }));
  }

  onDecide(event) {
    const button = event.target.closest("button[data-member]");
    if (!button) return;
    const approve = button.dataset.decision === "approve";
    const member = button.dataset.member;
    this.command("decide", (id) => groupDecideCommand({ id, group: this.group(), member, approve }));
    button.closest("li")?.remove();
  }

  copy() {
    const link = $("group-invite-code").value;
    if (!link) return;
    navigator.clipboard?.writeText(link).then(
      () => this.toast("Invite link copied"),
      () => $("group-invite-code").select(),
    );
  }

  showJoin(text) {
    $("join-group-code").value = text;
    $("join-group-error").textContent = "";
    $("join-group-dialog").showModal();
    $("join-group-code").focus();
  }

  join(text) {
    const code = codeOf(text);
    if (!code) {
      $("join-group-error").textContent = "That is not an invite link or code";
      return false;
    }
    if (!this.synced()) {
      $("join-group-error").textContent = "Offline: try again when connected";
      return false;
    }
    const id = newId("j");
    this.mine.set(id, "join");
    this.run(groupJoinCommand({ id, code }));
    return true;
  }

  // ---------------------------------------------------------------- answers
  /** A `group` event (any): mine ends its command; the panel is redrawn by refresh. */
  onGroupEvent(event) {
    if (!event.ref || !this.mine.has(event.ref)) return;
    const kind = this.mine.get(event.ref);
    this.mine.delete(event.ref);
    if (kind === "settings") $("group-info-status").textContent = "Saved";
    if (kind === "join") this.toast(`You joined ${event.group.name}`);
  }

  /** A live `group_invite` or `group_requests` answer. */
  onAnswer(event) {
    if (!this.mine.delete(event.ref)) return; // another device's
    if (event.type === "group_invite") {
      $("group-invite-code").value = event.code ? inviteLink(event.code) : "";
      $("group-info-status").textContent = event.code ? "New invite link: share it" : "The invite link was revoked";
    } else if (event.type === "group_requests" && event.group === this.group()) {
      this.renderRequests(Array.isArray(event.requests) ? event.requests : []);
    }
  }

  renderRequests(requests) {
    const list = $("group-requests");
    list.replaceChildren();
    for (const request of requests) {
      if (!request || typeof request.user !== "string") continue;
      const item = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = this.store.nameOf(request.user);
      item.append(name);
      for (const [decision, label] of [["approve", "Approve"], ["reject", "Reject"]]) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = label;
        button.dataset.member = request.user;
        button.dataset.decision = decision;
        button.className = decision === "approve" ? "primary" : "";
        item.append(button);
      }
      list.append(item);
    }
    $("group-requests-empty").hidden = list.children.length > 0;
  }

  /** A `group_request` event (in cursor order). */
  onRequest(event) {
    if (event.ref) this.mine.delete(event.ref);
    if (event.user === this.user) {
      const what = event.state === "pending" ? "Your request to join" : "Your request to join was declined:";
      if (event.ref || event.state !== "pending") this.toast(`${what} ${event.name}${event.state === "pending" ? " waits for an admin" : ""}`);
      return;
    }
    if (event.state === "pending") this.toast(`${this.store.nameOf(event.user)} asks to join ${event.name}`);
    if ($("group-info-dialog").open && event.group === this.group()) this.askRequests();
  }

  /** `ok` for one of my commands: nothing changed (joined already, the same settings). */
  onOk(ref) {
    const kind = this.mine.get(ref);
    if (!kind) return false;
    this.mine.delete(ref);
    if (kind === "join") this.toast("You are in that group already");
    if (kind === "settings") $("group-info-status").textContent = "Nothing changed";
    return true;
  }

  /** An `error` for one of my commands; false: not mine. */
  onError(error) {
    const kind = error.ref ? this.mine.get(error.ref) : undefined;
    if (!kind) return false;
    this.mine.delete(error.ref);
    const message = typeof error.message === "string" ? error.message : error.code;
    if (kind === "join") this.toast(error.code === "not_found" ? "That invite link is not valid" : `Could not join: ${message}`);
    else this.fail(error.code === "not_admin" ? "Only admins can do that" : message);
    return true;
  }

  fail(message) {
    $("group-info-status").textContent = "";
    if ($("group-info-dialog").open) $("group-info-error").textContent = message;
    else this.toast(message);
  }

  /** A link opened with `#join=<code>`: offer to join (once connected). */
  offerFromLocation() {
    const code = codeOf(location.hash.startsWith("#join=") ? location.hash : "");
    if (!code) return;
    history.replaceState(null, "", location.pathname + location.search);
    this.showJoin(code);
  }
}
