// mqchat web: the entry point. Logs in over MQTT-over-WebSocket with the user id and token, and
// ties the protocol session, the store, the media API and the page together.
//
// It uses only the published wire contract (docs/protocol.md) and the media HTTP API; the node
// tells the page where its broker is with GET /web/config.json.

import { Connection, mqttVersion } from "./js/connection.js";
import { GroupInfo } from "./js/groupinfo.js";
import { Media } from "./js/media.js";
import {
  MAX_PROFILE_USERS,
  MAX_TEXT_LENGTH,
  SEQUENCED_TYPES,
  Topics,
  basicAuth,
  blockCommand,
  blocksCommand,
  chatListCommand,
  deleteCommand,
  devicesCommand,
  editCommand,
  groupCreateCommand,
  groupListCommand,
  historyCommand,
  isGroupId,
  isUserId,
  newId,
  parseDevice,
  parseProfile,
  profileGetCommand,
  profileSetCommand,
  reactCommand,
  timerGetCommand,
  timerSetCommand,
  wireConversation,
  groupInviteCommand,
  parseInvitation,
  parsePrivacy,
  privacyGetCommand,
  privacySetCommand,
  reportCommand,
  unblockCommand,
  searchCommand,
} from "./js/protocol.js";
import { PrivacyView } from "./js/privacy.js";
import { SearchPanel } from "./js/search.js";
import { Session } from "./js/session.js";
import { Store } from "./js/store.js";
import { View } from "./js/ui.js";

const LOGIN_KEY = "mqchat:login"; // sessionStorage: this tab stays logged in across reloads
const TYPING_EVERY_MS = 3000;
const TYPING_PAUSE_MS = 4000;
const MAX_CHATS_LISTED = 500; // chat list pages asked for at login, at most

const $ = (id) => document.getElementById(id);

class Chat {
  constructor({ config, user, secret, onConnected, onFailed }) {
    this.user = user;
    this.onConnected = onConnected;
    this.onFailed = onFailed;
    this.connectedOnce = false;
    this.groupRequests = new Set();
    this.profileRequests = new Set(); // my profile_set and avatar changes waiting for their `profile`
    this.profileAsks = new Map(); // profile_get id -> the users asked for
    this.profileAsked = new Set(); // users asked for since the last sync
    this.profileHidden = new Set(); // left out of an answer (not a contact yet): asked again on news
    this.devicesRequest = null;
    this.chatsRequest = null; // the chat_list page asked for
    this.reactRequests = new Set(); // my react commands waiting for their `reaction` (or `ok`)
    this.timerAsked = new Set(); // chats whose timer was asked for (timer_get) on this page
    this.historyRequests = new Map(); // history id -> {conv, older}: pages asked for, not answered yet
    this.blockRequests = new Map(); // my block, unblock and report commands -> what the toast says when done
    this.typingTo = null;
    this.typingSentAt = 0;
    this.typingPause = null;
    this.store = new Store(user).load();
    this.session = new Session({ user, cursor: this.store.cursor, outbox: this.store.outbox });
    this.media = new Media({ base: config.media, authorization: basicAuth(user, secret) });
    this.view = new View({
      store: this.store,
      media: this.media,
      timers: Array.isArray(config.disappearing_timers) ? config.disappearing_timers : undefined,
      actions: {
        open: (id) => this.open(id),
        send: (text, replyTo) => this.send(text, replyTo),
        sendMedia: (pending, caption, replyTo) => this.sendMedia(pending, caption, replyTo),
        forward: (item, to) => this.forward(item, to),
        typing: (composing) => this.typing(composing),
        newChat: (peer) => this.newChat(peer),
        newGroup: (name, members) => this.newGroup(name, members),
        retry: (item) => this.retry(item),
        editMessage: (item, text) => this.editMessage(item, text),
        deleteMessage: (item, everyone) => this.deleteMessage(item, everyone),
        saveProfile: (change) => this.saveProfile(change),
        setAvatar: (file) => this.setAvatar(file),
        listDevices: () => this.listDevices(),
        react: (item, emoji) => this.react(item, emoji),
        setTimer: (to, seconds) => this.setTimer(to, seconds),
        loadOlder: (id) => this.loadHistory(id, { older: true }),
        setBlocked: (user, blocked) => this.setBlocked(user, blocked),
        report: (user, reason, block) => this.report(user, reason, block),
        logout: () => logout(),
      },
    });
    this.store.subscribe((what) => this.view.update(what));
    // group info, invite links and join requests
    this.groupInfo = new GroupInfo({
      user,
      store: this.store,
      media: this.media,
      run: (payload) => this.connection.run(this.session.request(payload)),
      openId: () => this.view.openId,
      toast: (text) => this.view.toast(text),
      synced: () => this.session.synced,
    });
    this.setUpPrivacy();
    this.search = new SearchPanel({ store: this.store, run: (query) => this.runSearch(query), open: (id) => this.open(id) });
    this.connection = new Connection({
      url: config.mqtt_ws,
      mqttVersion: mqttVersion(config.mqtt_versions, new URLSearchParams(location.search).get("mqtt")),
      topics: new Topics(config.prefix, config.presence_prefix),
      user,
      secret,
      session: this.session,
      contacts: () => this.store.contacts(),
      handlers: {
        events: (effects) => this.onEffects(effects),
        presence: (presence) => this.store.onPresence(presence),
        status: (state) => this.onStatus(state),
        failed: (message) => this.onFailed(message),
      },
    });
    this.onVisible = () => this.markRead();
    this.onHide = () => this.connectedOnce && this.store.save();
  }

  start() {
    document.addEventListener("visibilitychange", this.onVisible);
    window.addEventListener("focus", this.onVisible);
    window.addEventListener("pagehide", this.onHide);
    this.connection.start();
  }

  stop({ forget = false } = {}) {
    document.removeEventListener("visibilitychange", this.onVisible);
    window.removeEventListener("focus", this.onVisible);
    window.removeEventListener("pagehide", this.onHide);
    clearTimeout(this.typingPause);
    this.connection.stop();
    this.groupInfo.destroy();
    if (forget) {
      this.store.clear();
      this.privacy.forget();
    } else if (this.connectedOnce) this.store.save();
    this.privacy.destroy();
    this.view.destroy();
    this.search.destroy();
    this.media.close();
  }

  onStatus(state) {
    this.view.setConnection(state);
    if (state === "offline" && this.store.presence.size) {
      this.store.presence.clear(); // not known while offline: the retained ones come back on reconnect
      this.view.update({});
    }
    if (state === "syncing" && !this.connectedOnce) {
      this.connectedOnce = true;
      this.onConnected();
      this.view.showChat();
    }
  }

  // ---------------------------------------------------------------- from the server
  onEffects(effects) {
    const convs = new Set();
    let openAfter = null;
    for (const event of effects.events) {
      if (SEQUENCED_TYPES.has(event.type)) {
        const id = this.store.apply(event);
        if (id) convs.add(id);
        if (event.type === "group" && event.ref && this.groupRequests.delete(event.ref)) openAfter = event.group.id;
        if (event.type === "profile" && event.ref && this.profileRequests.delete(event.ref)) this.view.profileDone();
        if (event.type === "reaction" && event.ref) this.reactRequests.delete(event.ref);
        if (event.type === "group") this.groupInfo.onGroupEvent(event);
        if (event.type === "group_request") this.groupInfo.onRequest(event);
        // privacy: also its live answer (no cursor), which session.js passes on as it is
        if (event.type === "privacy" || event.type === "group_invitation" || event.type === "group") this.onPrivacyEvent(event);
        if (event.type === "blocking" && event.ref) this.blockDone(event.ref);
      } else if (event.type === "typing") {
        // in a group, the group's chat shows it (its `group`); else the sender's
        const where = isGroupId(event.group) ? event.group : event.from;
        if (isUserId(event.from)) this.store.onTyping(where, event.state === "composing");
      } else if (event.type === "chats") {
        this.onChats(event);
      } else if (event.type === "groups") {
        if (Array.isArray(event.groups)) this.store.onGroups(event.groups.filter((g) => g && isGroupId(g.id)));
      } else if (event.type === "profiles") {
        this.onProfiles(event);
      } else if (event.type === "devices") {
        this.onDevices(event);
      } else if (event.type === "group_invite" || event.type === "group_requests") {
        this.groupInfo.onAnswer(event);
      } else if (event.type === "timer_info") {
        if (typeof event.conversation === "string") this.store.onTimerInfo(event);
      } else if (event.type === "history") {
        const id = this.onHistory(event);
        if (id) convs.add(id);
      } else if (event.type === "sync_reset") {
        this.rebuild();
      } else if (event.type === "blocks") {
        if (Array.isArray(event.users)) this.store.onBlocks(event.users.filter(isUserId));
      } else if (event.type === "search_results") {
        this.search.onResults(event);
      } else if (event.type === "ok") {
        if (this.groupInfo.onOk(event.ref)) continue;
        this.reactRequests.delete(event.ref); // a reaction that changed nothing
        this.blockDone(event.ref); // a report, or a block that changed nothing
      } else if (event.type === "error") {
        this.onError(event);
      }
    }
    this.store.commit(this.session.cursor, this.session.pending());
    if (effects.synced) {
      this.connection.run(this.session.request(groupListCommand({ id: newId("l") })));
      this.groupInfo.offerFromLocation();
      this.connection.run(this.session.request(blocksCommand({ id: newId("k") })));
      this.askChats(null);
      this.profileAsked.clear(); // fresh after being away
      this.askProfiles([this.user, ...this.store.contacts()]);
    }
    const people = this.store.peopleOf(convs);
    this.connection.retry(people); // a first message may make them contacts
    this.askProfiles(people);
    this.connection.watch(this.store.contacts());
    this.view.update({ convs });
    this.groupInfo.refresh();
    if (openAfter) this.open(openAfter);
    this.markRead();
  }

  // ---------------------------------------------------------------- the chat list
  /** Ask for a page of the chat list (after the page whose `next` is `before`). */
  askChats(before) {
    this.chatsRequest = newId("c");
    this.connection.run(this.session.request(chatListCommand({ id: this.chatsRequest, before })));
  }

  onChats(answer) {
    if (answer.ref !== this.chatsRequest || !Array.isArray(answer.chats)) return;
    const convs = this.store.onChats(answer.chats.filter((chat) => chat && typeof chat === "object"));
    this.askProfiles(this.store.peopleOf(convs));
    this.connection.watch(this.store.contacts());
    this.view.update({ convs });
    if (typeof answer.next === "string" && this.store.convs.size < MAX_CHATS_LISTED) this.askChats(answer.next);
    else this.chatsRequest = null;
  }

  onError(error) {
    const message = typeof error.message === "string" ? error.message : error.code;
    if (error.ref && this.historyRequests.has(error.ref)) {
      const { conv } = this.historyRequests.get(error.ref);
      this.historyRequests.delete(error.ref);
      this.view.historyDone(conv, false);
      if (error.code !== "forbidden") this.view.toast(`Cannot load the history: ${message}`);
      return;
    }
    if (this.onPrivacyError(error, message)) return;
    if (this.search.onError(error, message)) return;
    if (error.ref && this.profileRequests.delete(error.ref)) {
      this.view.profileError(`Your profile was not changed: ${message}`);
      return;
    }
    if (error.ref && error.ref === this.devicesRequest) {
      this.devicesRequest = null;
      this.view.devicesError(`Cannot list your devices: ${message}`);
      return;
    }
    if (error.ref && error.ref === this.chatsRequest) {
      this.chatsRequest = null;
      console.warn("mqchat: chat_list refused:", message); // the chats from sync stay
      return;
    }
    if (error.ref && this.profileAsks.delete(error.ref)) {
      console.warn("mqchat: profile_get refused:", message); // the names stay user ids
      return;
    }
    if (this.groupInfo.onError(error)) return;
    if (error.ref && this.reactRequests.delete(error.ref)) {
      this.view.toast(`Could not react: ${message}`);
      return;
    }
    if (error.ref && this.blockRequests.delete(error.ref)) {
      this.view.toast(`Not done: ${message}`);
      return;
    }
    if (error.ref && this.store.failPending(error.ref, message)) return;
    if (error.ref && this.groupRequests.delete(error.ref)) {
      this.view.toast(`Could not create the group: ${message}`);
      return;
    }
    this.view.toast(message);
  }

  // ---------------------------------------------------------------- privacy (js/privacy.js)
  setUpPrivacy() {
    this.privacyRequests = new Set(); // my privacy_get and privacy_set waiting for their `privacy`
    this.inviteRequests = new Map(); // group_invite_accept / _decline id -> group
    const live = (payload) => {
      if (!this.session.synced) return false;
      this.connection.run(this.session.request(payload));
      return true;
    };
    this.privacy = new PrivacyView({
      user: this.user,
      actions: {
        load: () => {
          const id = newId("pg");
          this.privacyRequests.add(id);
          return live(privacyGetCommand({ id }));
        },
        save: (changes) => {
          const id = newId("ps");
          this.privacyRequests.add(id);
          return live(privacySetCommand({ id, ...changes }));
        },
        answer: (group, accept) => {
          const id = newId("gi");
          this.inviteRequests.set(id, group);
          if (live(groupInviteCommand({ id, group, accept }))) return true;
          this.view.toast("Offline: try again when connected");
          return false;
        },
      },
    });
  }

  onPrivacyEvent(event) {
    if (event.type === "privacy") {
      const settings = parsePrivacy(event.settings);
      const mine = event.ref && this.privacyRequests.delete(event.ref);
      if (settings && (mine || this.privacy.dialog.open)) this.privacy.show(settings, { saved: mine && event.cursor !== undefined });
    } else if (event.type === "group_invitation") {
      const invitation = parseInvitation(event);
      if (invitation) this.privacy.onInvitation(invitation);
    } else if (event.type === "group" && Array.isArray(event.affected) && event.affected.includes(this.user)) {
      this.privacy.dropInvitation(event.group.id); // joined (by this invitation or another add)
    }
  }

  onPrivacyError(error, message) {
    if (error.ref && this.privacyRequests.delete(error.ref)) {
      this.privacy.fail(`Your privacy settings were not changed: ${message}`);
      return true;
    }
    const group = error.ref && this.inviteRequests.get(error.ref);
    if (!group) return false;
    this.inviteRequests.delete(error.ref);
    this.privacy.dropInvitation(group); // expired or answered elsewhere
    this.view.toast(error.code === "not_found" ? "That invitation has expired" : message);
    return true;
  }

  // ---------------------------------------------------------------- profiles and devices
  /**
   * Ask for the profiles of these users, unless asked since the last sync (then `profile` events
   * keep them fresh). A user left out of an answer (not a contact yet) is asked again when
   * something happens in a chat with them, since a first message makes them contacts.
   */
  askProfiles(users) {
    if (!this.session.synced) return;
    const wanted = [];
    for (const user of users) {
      if (isGroupId(user) || (this.profileAsked.has(user) && !this.profileHidden.has(user))) continue;
      this.profileAsked.add(user);
      this.profileHidden.delete(user);
      wanted.push(user);
    }
    for (let i = 0; i < wanted.length; i += MAX_PROFILE_USERS) {
      const id = newId("p");
      const users = wanted.slice(i, i + MAX_PROFILE_USERS);
      this.profileAsks.set(id, users);
      this.connection.run(this.session.request(profileGetCommand({ id, users })));
    }
  }

  onProfiles(answer) {
    const asked = this.profileAsks.get(answer.ref);
    if (!asked) return; // another device's question
    this.profileAsks.delete(answer.ref);
    const profiles = (Array.isArray(answer.profiles) ? answer.profiles : []).map((p) => parseProfile(p)).filter(Boolean);
    const got = new Set(profiles.map((p) => p.user));
    for (const user of asked) if (!got.has(user)) this.profileHidden.add(user);
    this.store.onProfiles(profiles);
  }

  saveProfile(change) {
    if (!this.session.synced) {
      this.view.profileError("Offline: try again when connected");
      return false;
    }
    const id = newId("n");
    this.profileRequests.add(id);
    this.connection.run(this.session.request(profileSetCommand({ id, ...change })));
    return true;
  }

  /** Set (a file) or remove (null) my avatar over the media API; the `profile` event follows. */
  setAvatar(file) {
    const id = newId("a");
    this.profileRequests.add(id);
    this.media.avatar({ id, file }).catch((error) => {
      if (this.profileRequests.delete(id)) this.view.profileError(`Your photo was not changed: ${error.message}`);
    });
    return true;
  }

  listDevices() {
    if (!this.session.synced) return false;
    this.devicesRequest = newId("d");
    this.connection.run(this.session.request(devicesCommand({ id: this.devicesRequest })));
    return true;
  }

  // ---------------------------------------------------------------- search
  /** Send a search; its command id, or null when not connected (the panel says so). */
  runSearch(query) {
    if (!this.session.synced) return null;
    const id = newId("q");
    this.connection.run(this.session.request(searchCommand({ id, query })));
    return id;
  }

  onDevices(answer) {
    if (answer.ref !== this.devicesRequest) return; // another device's question
    this.devicesRequest = null;
    const devices = (Array.isArray(answer.devices) ? answer.devices : []).map(parseDevice).filter(Boolean);
    this.view.showDevices(devices, this.connection.device);
  }

  // ---------------------------------------------------------------- blocking and reports
  /** Block or unblock a user; the `blocking` event (on every device of mine) shows it. */
  setBlocked(user, blocked) {
    const id = newId(blocked ? "b" : "u");
    this.blockRequests.set(id, blocked ? "Blocked" : "Unblocked");
    this.connection.run(this.session.request((blocked ? blockCommand : unblockCommand)({ id, user })));
  }

  /** Report a user with the last messages they sent me in our chat (WhatsApp sends the last five). */
  report(user, reason, block) {
    const theirs = (this.store.convs.get(user)?.items || []).filter((m) => m.id && m.from === user);
    const messages = theirs.slice(-5).map((m) => m.id);
    const id = newId("r");
    this.blockRequests.set(id, block ? "Reported and blocked" : "Reported");
    this.connection.run(this.session.request(reportCommand({ id, user, messages, reason, block })));
  }

  blockDone(ref) {
    const said = this.blockRequests.get(ref);
    if (said === undefined) return;
    this.blockRequests.delete(ref);
    this.view.toast(said);
  }

  /** Set my reaction to a stored message (an empty emoji removes it); the `reaction` event shows it. */
  react(item, emoji) {
    if (!item.id) return false;
    if (!this.session.synced) {
      this.view.toast("Offline: try again when connected");
      return false;
    }
    const id = newId("x");
    this.reactRequests.add(id);
    this.connection.run(this.session.request(reactCommand({ id, message: item.id, emoji })));
    return true;
  }

  /** Set a conversation's disappearing-message timer; the `timer` event announces it in the chat. */
  setTimer(to, seconds) {
    if (!this.session.connected) {
      this.view.toast("Offline: try again when connected");
      return false;
    }
    this.connection.run(this.session.request(timerSetCommand({ id: newId("t"), to, seconds })));
    return true;
  }

  /** Report the open conversation's messages as read, when the page is in front of the user. */
  markRead() {
    const id = this.view.openId;
    if (id === null || document.visibilityState !== "visible" || !this.session.synced) return;
    const ids = this.store.takeUnread(id);
    if (ids.length) this.connection.run(this.session.receipts(ids, "read"));
    this.view.renderList();
  }

  // ---------------------------------------------------------------- history
  /**
   * Ask for a page of a chat's history: the latest messages (a chat this browser has not loaded
   * yet: a new browser shows them without syncing everything), or, `older`, those before the
   * oldest one shown (scrolling up). One request per chat at a time; needs the connection.
   */
  loadHistory(convId, { older = false } = {}) {
    if (convId === null || !this.session.connected) return false;
    for (const pending of this.historyRequests.values()) if (pending.conv === convId) return false;
    const before = older ? this.store.oldestSeq(convId) : null;
    if (older && before === null) return false;
    const id = newId("h");
    this.historyRequests.set(id, { conv: convId, older });
    const conversation = wireConversation(this.user, convId);
    this.connection.run(this.session.request(historyCommand({ id, conversation, before })));
    this.view.historyLoading(convId);
    return true;
  }

  onHistory(answer) {
    const asked = this.historyRequests.get(answer.ref);
    if (!asked) return null; // another device's page
    this.historyRequests.delete(answer.ref);
    const messages = Array.isArray(answer.messages) ? answer.messages : [];
    const id = this.store.onHistory(asked.conv, messages, answer.receipts, answer.more, { older: asked.older });
    this.view.historyDone(asked.conv, asked.older && messages.length > 0);
    return id;
  }

  /** After a `sync_reset`: the chats are rebuilt from the latest page of each one this browser knows. */
  rebuild() {
    for (const conv of this.store.convs.values()) {
      conv.historyLoaded = false;
      this.loadHistory(conv.id);
    }
  }

  // ---------------------------------------------------------------- from the user
  open(id) {
    this.stopTyping();
    this.view.open(id);
    this.groupInfo.refresh();
    this.askTimer(id);
    const conv = id === null ? null : this.store.convs.get(id);
    if (conv && !conv.historyLoaded) this.loadHistory(id); // the latest page, once per chat and page
    this.markRead();
  }

  /** A chat whose timer this page never heard of (its `timer` events are older than what it
   * synced): ask for it once, for the header's timer control. */
  askTimer(id) {
    const conv = this.store.convs.get(id);
    if (!conv || conv.timer !== undefined || this.timerAsked.has(id) || !this.session.connected) return;
    this.timerAsked.add(id);
    this.connection.run(this.session.request(timerGetCommand({ id: newId("t"), to: id })));
  }

  /** Send `text` to the open chat; `replyTo`: the id of the message it answers (or null). */
  send(text, replyTo = null) {
    const to = this.view.openId;
    if (to === null) return false;
    if (text.length > MAX_TEXT_LENGTH) {
      this.view.toast(`A message has at most ${MAX_TEXT_LENGTH} characters`);
      return false;
    }
    this.stopTyping();
    const { id, effects } = this.session.send({ to, text, replyTo: replyTo || undefined });
    this.store.addPending({ ref: id, to, text, reply: this.store.quoteOf(replyTo) });
    this.connection.run(effects);
    this.store.commit(this.session.cursor, this.session.pending());
    return true;
  }

  sendMedia(pending, caption, replyTo = null) {
    const to = this.view.openId;
    if (to === null) return;
    const reply = this.store.quoteOf(replyTo);
    const item = this.store.addPending({ ref: newId("u"), to, text: caption, upload: pending, reply });
    this.upload(item, to);
  }

  /** Send message `item` (one I sent or got) on to chat `to`: a new message, marked forwarded. */
  forward(item, to) {
    if (!item.id) return false;
    const { id, effects } = this.session.forward({ message: item.id, to });
    const pending = this.store.addPending({ ref: id, to, text: item.text, forwarded: true });
    pending.forwardOf = item.id;
    this.connection.run(effects);
    this.store.commit(this.session.cursor, this.session.pending());
    return true;
  }

  upload(item, to) {
    this.media
      .upload({
        to,
        id: item.ref,
        caption: item.text,
        file: item.upload.file,
        kind: item.upload.kind,
        name: item.upload.name,
        replyTo: item.reply?.id,
      })
      .then((answer) => {
        // 200: stored before (a repeated upload); its `sent` event went by already
        if (answer.status === "stored" && answer.sent && answer.sent.message) {
          this.store.onSent(item.ref, answer.sent.message);
          this.view.update({ conv: to });
        }
      })
      .catch((error) => this.store.failPending(item.ref, error.message));
  }

  // ---------------------------------------------------------------- edits and deletes
  /** Edit one of my messages: the bubble changes when the `edited` event comes (an error: a toast). */
  editMessage(item, text) {
    if (!this.canChange(item)) return;
    this.connection.run(this.session.request(editCommand({ id: newId("e"), message: item.id, text })));
  }

  /** Delete a message for everyone, or for me: the `deleted` or `hidden` event changes the view. */
  deleteMessage(item, everyone) {
    if (!this.canChange(item)) return;
    this.connection.run(this.session.request(deleteCommand({ id: newId("d"), message: item.id, everyone })));
  }

  /** Changes are live commands (not queued like sends): they need the connection. */
  canChange(item) {
    if (!item.id) return false;
    if (this.session.connected) return true;
    this.view.toast("Offline: try again when connected");
    return false;
  }

  retry(item) {
    const to = this.store.convOf(item);
    if (!to || item.status !== "failed") return;
    item.status = "pending";
    item.error = undefined;
    if (item.upload) {
      this.upload(item, to);
    } else {
      const again = item.forwarded && item.forwardOf
        ? this.session.forward({ message: item.forwardOf, to, id: item.ref })
        : this.session.send({ to, text: item.text, id: item.ref, replyTo: item.reply?.id });
      const { effects } = again;
      this.connection.run(effects);
      this.store.commit(this.session.cursor, this.session.pending());
    }
    this.view.update({ conv: to });
  }

  typing(composing) {
    const to = this.view.openId;
    if (!composing || to === null || !this.session.synced) {
      this.stopTyping();
      return;
    }
    const now = Date.now();
    if (this.typingTo !== to || now - this.typingSentAt > TYPING_EVERY_MS) {
      this.typingTo = to;
      this.typingSentAt = now;
      this.connection.run(this.session.typing(to, true));
    }
    clearTimeout(this.typingPause);
    this.typingPause = setTimeout(() => this.stopTyping(), TYPING_PAUSE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingPause);
    if (this.typingTo !== null && this.session.synced) this.connection.run(this.session.typing(this.typingTo, false));
    this.typingTo = null;
    this.typingSentAt = 0;
  }

  newChat(peer) {
    if (!isUserId(peer)) {
      this.view.toast("A user id is 1-64 letters, digits, '.', '_' or '-'");
      return false;
    }
    if (peer === this.user) {
      this.view.toast("That's you");
      return false;
    }
    this.store.conversation(peer);
    this.store.scheduleSave();
    this.connection.watch([peer]);
    this.askProfiles([peer]);
    this.open(peer);
    return true;
  }

  newGroup(name, members) {
    const unique = [...new Set(members)].filter((m) => m !== this.user);
    const bad = unique.filter((m) => !isUserId(m));
    if (!name || name.length > 100) {
      this.view.toast("A group name has 1-100 characters");
      return false;
    }
    if (bad.length || !unique.length) {
      this.view.toast(bad.length ? `Not a user id: ${bad.join(", ")}` : "Add at least one member");
      return false;
    }
    if (!this.session.synced) {
      this.view.toast("Offline: try again when connected");
      return false;
    }
    const id = newId("g");
    this.groupRequests.add(id);
    this.connection.run(this.session.request(groupCreateCommand({ id, name, members: unique })));
    return true;
  }
}

// -------------------------------------------------------------------- login and boot
let config = null;
let chat = null;

function showLogin(error = "") {
  document.body.dataset.view = "login";
  delete document.body.dataset.connection;
  $("chat-view").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = error;
  $("login-button").disabled = false;
  $("login-button").textContent = "Log in";
  (($("login-user").value && $("login-secret")) || $("login-user")).focus();
}

function login(user, secret) {
  if (chat) chat.stop();
  $("login-view").hidden = false;
  $("login-error").textContent = "";
  $("login-button").disabled = true;
  $("login-button").textContent = "Connecting…";
  const current = (chat = new Chat({
    config,
    user,
    secret,
    onConnected: () => sessionStorage.setItem(LOGIN_KEY, JSON.stringify({ user, secret })),
    onFailed: (message) => {
      if (chat !== current) return;
      chat.stop();
      chat = null;
      sessionStorage.removeItem(LOGIN_KEY);
      showLogin(message);
    },
  }));
  chat.start();
}

function logout() {
  if (chat) chat.stop({ forget: true }); // a shared computer keeps nothing of this user
  chat = null;
  sessionStorage.removeItem(LOGIN_KEY);
  $("login-secret").value = "";
  showLogin();
}

async function boot() {
  try {
    const response = await fetch("/web/config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    config = await response.json();
  } catch (error) {
    showLogin(`Cannot read the server's settings (${error.message})`);
    $("login-button").disabled = true;
    return;
  }
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const user = $("login-user").value.trim();
    const secret = $("login-secret").value;
    if (!isUserId(user)) {
      $("login-error").textContent = "A user id is 1-64 letters, digits, '.', '_' or '-'";
      return;
    }
    login(user, secret);
  });
  if (!config.mqtt_ws) {
    showLogin("This server has no MQTT-over-WebSocket listener (broker.ws_port)");
    $("login-button").disabled = true;
    return;
  }
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(LOGIN_KEY) || "null");
  } catch {
    saved = null;
  }
  if (saved && isUserId(saved.user) && typeof saved.secret === "string") {
    $("login-user").value = saved.user;
    login(saved.user, saved.secret);
  } else {
    showLogin();
  }
}

boot();
