// The MQTT side of the web client: MQTT.js (the global `mqtt` of vendor/mqtt.min.js) over
// WebSocket, driving a Session, on MQTT 5 or 3.1.1 (`mqttVersion` below chooses). Every
// connection starts clean (clean session on 3.1.1, clean start and no session expiry on MQTT 5):
// on each connect it subscribes the inbox, lets the session `sync`, and subscribes the presence
// of the user's contacts again. The server may refuse a presence subscription (by default only
// contacts see each other: a new chat's peer becomes one with the first message); a refused user
// is asked for again when `retry` says something changed with them, and on every connect.

import { parsePresence } from "./protocol.js";

const TICK_MS = 200;
// CONNACK refusals of the credentials: bad user name or password, not authorized (3.1.1: 4 and 5;
// MQTT 5's reason codes 0x86 and 0x87)
const AUTH_REFUSED = new Set([4, 5, 0x86, 0x87]);

/**
 * The MQTT version to speak (the CONNECT's protocol level): `asked` (the page's `?mqtt=` parameter:
 * "5", or "3.1.1" / "4") when given, else 5 when the server says it speaks it (`offered`, the
 * protocol levels of /web/config.json's `mqtt_versions`), else 3.1.1.
 */
export function mqttVersion(offered, asked) {
  if (asked === "5") return 5;
  if (asked === "3.1.1" || asked === "4") return 4;
  return Array.isArray(offered) && offered.includes(5) ? 5 : 4;
}

function randomDevice() {
  const bytes = new Uint8Array(4);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Connection {
  /**
   * @param handlers {events(effects), presence(p), status(state), failed(message)}
   *   status: "connecting" | "syncing" | "online" | "offline"
   */
  constructor({ url, mqttVersion = 4, topics, user, secret, session, contacts, handlers }) {
    this.url = url;
    this.mqttVersion = mqttVersion; // 4 (3.1.1) or 5
    this.topics = topics;
    this.user = user;
    this.secret = secret;
    this.session = session;
    this.contacts = contacts;
    this.handlers = handlers;
    this.device = randomDevice(); // this browser tab's device: the client id is <user>/<device>
    this.clientId = `${user}/${this.device}`;
    this.client = null;
    this.everConnected = false;
    this.watched = new Set(); // subscribed, or waiting for the SUBACK
    this.refused = new Set(); // the server said no: not asked again until `retry`
    this.timer = null;
    this.decoder = new TextDecoder();
  }

  get connected() {
    return this.session.connected;
  }

  start() {
    const mqtt = globalThis.mqtt;
    if (!mqtt || typeof mqtt.connect !== "function") {
      this.handlers.failed("The MQTT library did not load (vendor/mqtt.min.js)");
      return;
    }
    this.handlers.status("connecting");
    const client = (this.client = mqtt.connect(this.url, {
      clientId: this.clientId,
      username: this.user,
      password: this.secret,
      protocolVersion: this.mqttVersion,
      clean: true, // MQTT 5: clean start, and no Session Expiry Interval (0): nothing kept
      keepalive: 30,
      reconnectPeriod: 2000,
      connectTimeout: 10000,
      resubscribe: false, // subscribed again on every connect, below
      queueQoSZero: false, // typing indicators are not worth sending late
    }));
    client.on("connect", () => this.onConnect());
    client.on("message", (topic, payload) => this.onMessage(topic, payload));
    client.on("close", () => this.onClose());
    client.on("offline", () => this.handlers.status("offline"));
    client.on("reconnect", () => this.handlers.status(this.everConnected ? "offline" : "connecting"));
    client.on("error", (error) => this.onError(error));
    this.timer = setInterval(() => this.run(this.session.onTick(performance.now())), TICK_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.client) {
      this.client.end(true);
      this.client = null;
    }
    this.session.onDisconnected();
  }

  /** Publish the effects' commands, then hand their events to the app. */
  run(effects) {
    if (!effects) return;
    for (const { payload, qos } of effects.commands) this.publish(payload, qos);
    if (effects.events.length || effects.cursorAdvanced || effects.synced) this.handlers.events(effects);
    if (effects.synced) this.handlers.status("online");
  }

  publish(payload, qos = 1) {
    if (!this.client || !this.session.connected) return false;
    // MQTT 5's PUBACK says why the server refused a command (quota exceeded, say); the `error`
    // event on the inbox says it too, and is what the page acts on
    this.client.publish(this.topics.outbox(this.user), JSON.stringify(payload), { qos }, (error) => {
      if (error && error.code) console.info(`mqchat: the server refused ${payload.type} ${payload.id}: ${error.message}`);
    });
    return true;
  }

  /** Follow the presence of these users (retained: the current one arrives at once). */
  watch(users) {
    if (!this.client || !this.session.connected) return;
    const asked = [];
    for (const user of users) {
      if (user === this.user || this.watched.has(user) || this.refused.has(user)) continue;
      this.watched.add(user);
      asked.push(user);
    }
    if (!asked.length) return;
    const client = this.client;
    const topics = asked.map((user) => this.topics.presence(user));
    // MQTT.js calls back with an error when any topic is refused; the SUBACK's codes say which
    client.subscribe(topics, { qos: 1 }, (error, subscriptions, suback) => {
      const codes = suback && Array.isArray(suback.granted) ? suback.granted : null;
      if (client !== this.client || !codes) return; // no SUBACK: the next connect subscribes again
      (subscriptions || []).forEach(({ topic }, i) => {
        const user = this.topics.presenceUser(topic);
        if (!user || (codes[i] & 0x80) === 0) return;
        this.watched.delete(user);
        this.refused.add(user);
      });
    });
  }

  /** Something changed with these users (a message, a group): ask again for a refused presence. */
  retry(users) {
    for (const user of users) this.refused.delete(user);
  }

  // ---------------------------------------------------------------- MQTT.js events
  onConnect() {
    this.everConnected = true;
    this.watched.clear();
    this.refused.clear();
    this.session.onConnected();
    this.handlers.status("syncing");
    const client = this.client;
    client.subscribe(this.topics.inbox(this.user), { qos: 1 }, (error, granted) => {
      if (client !== this.client || !this.session.connected) return;
      if (error || !granted || !granted.length || granted[0].qos & 0x80) {
        this.handlers.failed("The server refused the inbox subscription");
        return;
      }
      this.run(this.session.onSubscribed(performance.now()));
    });
    this.watch(this.contacts());
  }

  onMessage(topic, payload) {
    let data;
    try {
      data = JSON.parse(this.decoder.decode(payload));
    } catch {
      console.warn("mqchat: ignoring a payload that is not JSON on", topic);
      return;
    }
    if (topic === this.topics.inbox(this.user)) {
      this.run(this.session.onInbox(data, performance.now()));
      return;
    }
    const user = this.topics.presenceUser(topic);
    const presence = user && parsePresence(data);
    if (presence && presence.user === user) this.handlers.presence(presence);
  }

  onClose() {
    const wasConnected = this.session.connected;
    this.session.onDisconnected();
    if (!this.client) return;
    if (!this.everConnected) {
      this.handlers.failed(`Cannot connect to ${this.url}`);
      this.stop();
      return;
    }
    if (wasConnected) this.handlers.status("offline");
  }

  onError(error) {
    if (AUTH_REFUSED.has(error && error.code)) {
      this.handlers.failed(this.everConnected ? "The server no longer accepts your credentials" : "Wrong user id or token");
      this.stop();
      return;
    }
    console.warn("mqchat: connection error", error);
  }
}
