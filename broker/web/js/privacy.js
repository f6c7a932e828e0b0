// Privacy: the settings page (who sees my last seen, online status, photo and about, who may add me
// to groups, read receipts) and the cards of group invitations with Accept and Decline
// (docs/protocol.md#privacy). DOM only: it builds its own dialog, header button and card list, and
// tells the app what the user chose through `actions`.

import { AUDIENCES } from "./protocol.js";

const LABELS = {
  last_seen: "Last seen",
  online: "Online",
  photo: "Profile photo",
  about: "About",
  groups: "Who can add me to groups",
};
const AUDIENCE_LABELS = { everyone: "Everyone", contacts: "My contacts", nobody: "Nobody" };
const INVITES_KEY = "mqchat:invites:"; // localStorage, per user: the cards survive a reload

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export class PrivacyView {
  /**
   * @param user the logged-in user (the invitation cards are kept per user)
   * @param actions {load(), save(changes), answer(group, accept)}: each returns false when it could
   *   not be sent (offline)
   */
  constructor({ user, actions }) {
    this.user = user;
    this.actions = actions;
    this.invitations = new Map(); // group id -> {group, name, by, expires}
    this.pending = new Set(); // groups whose answer is on its way
    this.build();
    this.loadInvitations();
  }

  build() {
    this.button = el("button", {
      id: "privacy-button",
      className: "icon",
      type: "button",
      title: "Privacy",
      ariaLabel: "Privacy",
      innerHTML:
        '<svg viewBox="0 0 24 24" width="22" height="22"><path fill="currentColor" d="M12 1 3 5v6c0 5.55 3.84 10.74 9 12 5.16-1.26 9-6.45 9-12V5l-9-4Zm0 6a3 3 0 0 1 3 3v1h1v6H8v-6h1v-1a3 3 0 0 1 3-3Zm0 2a1 1 0 0 0-1 1v1h2v-1a1 1 0 0 0-1-1Z"/></svg>',
    });
    this.button.addEventListener("click", () => this.open());
    const header = document.querySelector(".side-header");
    header.insertBefore(this.button, document.getElementById("logout"));

    this.selects = {};
    const rows = Object.entries(LABELS).map(([name, label]) => {
      const select = el("select", { id: `privacy-${name.replace("_", "-")}`, name });
      for (const audience of AUDIENCES) select.append(el("option", { value: audience }, AUDIENCE_LABELS[audience]));
      this.selects[name] = select;
      return el("div", { className: "privacy-row" }, el("label", { htmlFor: select.id }, label), select);
    });
    this.receipts = el("input", { id: "privacy-read-receipts", type: "checkbox" });
    const receiptsRow = el(
      "div",
      { className: "privacy-row privacy-check" },
      el("label", { htmlFor: "privacy-read-receipts" }, "Read receipts"),
      this.receipts,
    );
    const hint = el(
      "p",
      { className: "hint" },
      "Without read receipts you send none and see none in one-to-one chats; groups always have them.",
    );
    this.status = el("p", { id: "privacy-status", className: "status-line", role: "status" });
    this.error = el("p", { id: "privacy-error", className: "error", role: "alert" });
    const close = el("button", { type: "button", className: "cancel" }, "Close");
    const save = el("button", { type: "submit", className: "primary", id: "privacy-save" }, "Save");
    close.addEventListener("click", () => this.dialog.close());
    const form = el(
      "form",
      { method: "dialog", id: "privacy-form" },
      el("h3", { id: "privacy-heading" }, "Privacy"),
      ...rows,
      receiptsRow,
      hint,
      this.status,
      this.error,
      el("div", { className: "buttons" }, close, save),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    this.dialog = el("dialog", { id: "privacy-dialog", className: "privacy-dialog" }, form);
    this.dialog.setAttribute("aria-labelledby", "privacy-heading");
    document.body.append(this.dialog);

    this.list = el("ul", { id: "invitations", className: "invitations", ariaLabel: "Group invitations" });
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-answer]");
      if (!button) return;
      const card = button.closest("[data-group]");
      this.answer(card.dataset.group, button.dataset.answer === "accept");
    });
    const chats = document.getElementById("chat-list");
    chats.parentNode.insertBefore(this.list, chats);
  }

  destroy() {
    this.button.remove();
    this.dialog.remove();
    this.list.remove();
  }

  // ---------------------------------------------------------------- the settings page
  open() {
    this.status.textContent = "Loading…";
    this.error.textContent = "";
    this.dialog.showModal();
    if (!this.actions.load()) this.fail("Offline: try again when connected");
  }

  /** The settings as the server has them (a `privacy` answer or event). */
  show(settings, { saved = false } = {}) {
    for (const [name, select] of Object.entries(this.selects)) select.value = settings[name];
    this.receipts.checked = settings.read_receipts;
    this.status.textContent = saved ? "Saved" : "";
    this.error.textContent = "";
  }

  save() {
    const changes = { read_receipts: this.receipts.checked };
    for (const [name, select] of Object.entries(this.selects)) changes[name] = select.value;
    this.status.textContent = "Saving…";
    if (!this.actions.save(changes)) this.fail("Offline: try again when connected");
  }

  fail(message) {
    this.status.textContent = "";
    this.error.textContent = message;
  }

  // ---------------------------------------------------------------- invitations
  /** A `group_invitation` event (parsed): a new card, or one to drop (declined on some device). */
  onInvitation(invitation) {
    if (invitation.state === "invited") this.invitations.set(invitation.group, invitation);
    else this.invitations.delete(invitation.group);
    this.pending.delete(invitation.group);
    this.renderInvitations();
  }

  /** The user is in `group` now, or the server has no invitation to it: no card. */
  dropInvitation(group) {
    this.pending.delete(group);
    if (this.invitations.delete(group)) this.renderInvitations();
  }

  answer(group, accept) {
    if (this.pending.has(group)) return;
    if (!this.actions.answer(group, accept)) return;
    this.pending.add(group);
    this.renderInvitations();
  }

  renderInvitations() {
    const now = Date.now() / 1000;
    for (const [group, invitation] of this.invitations) if (invitation.expires <= now) this.invitations.delete(group);
    const cards = [...this.invitations.values()].map((invitation) => {
      const busy = this.pending.has(invitation.group);
      const text = el(
        "div",
        { className: "invitation-text" },
        el("strong", {}, invitation.by),
        " invited you to ",
        el("strong", { className: "invitation-name" }, invitation.name),
      );
      const accept = el("button", { type: "button", className: "primary", disabled: busy }, "Accept");
      accept.dataset.answer = "accept";
      const decline = el("button", { type: "button", className: "cancel", disabled: busy }, "Decline");
      decline.dataset.answer = "decline";
      const card = el("li", { className: "invitation" }, text, el("div", { className: "buttons" }, decline, accept));
      card.dataset.group = invitation.group;
      return card;
    });
    this.list.replaceChildren(...cards);
    this.list.hidden = cards.length === 0;
    try {
      localStorage.setItem(INVITES_KEY + this.user, JSON.stringify([...this.invitations.values()]));
    } catch {
      // storage full or denied: the cards come back only with the events
    }
  }

  loadInvitations() {
    try {
      for (const invitation of JSON.parse(localStorage.getItem(INVITES_KEY + this.user) || "[]")) {
        if (invitation && typeof invitation.group === "string") this.invitations.set(invitation.group, invitation);
      }
    } catch {
      this.invitations.clear();
    }
    this.renderInvitations();
  }

  /** Logging out on a shared computer: keep nothing of this user. */
  forget() {
    localStorage.removeItem(INVITES_KEY + this.user);
  }
}
