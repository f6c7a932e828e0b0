// mqchat web: search of my own messages (docs/protocol.md, "Search"). A box above the chat list:
// typing asks the server (after a short pause), the hits replace the chat list while the box has
// text, each with its chat's name, when, and a snippet around the first word found; clicking a
// hit opens its chat. Nothing here is stored: the answer is live only.

import { listTime } from "./format.js";
import { isGroupId } from "./protocol.js";

const PAUSE_MS = 250;
const SNIPPET_BEFORE = 24;
const SNIPPET_LENGTH = 90;
const WORD = /[\p{L}\p{N}]+/gu; // what the server counts as a word (rules/search.py)

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The words of a query, lowercased, as the server reads them. */
export function queryWords(query) {
  return [...new Set((query.toLowerCase().match(WORD) || []).slice(0, 8))];
}

/**
 * A snippet of `text` around the first word that starts with one of `words`: [before, match,
 * after] (plain strings: the page puts them in text nodes, never HTML).
 */
export function snippet(text, words) {
  const lower = text.toLowerCase();
  let at = -1;
  let length = 0;
  for (const found of lower.matchAll(WORD)) {
    const word = words.find((w) => found[0].startsWith(w));
    if (word) {
      at = found.index;
      length = word.length;
      break;
    }
  }
  if (at < 0) return [text.slice(0, SNIPPET_LENGTH), "", ""];
  const start = Math.max(0, at - SNIPPET_BEFORE);
  const end = Math.min(text.length, start + SNIPPET_LENGTH);
  return [
    (start > 0 ? "…" : "") + text.slice(start, at),
    text.slice(at, at + length),
    text.slice(at + length, end) + (end < text.length ? "…" : ""),
  ];
}

/** The chat of a hit in the page's own terms: the group id, or the other person's user id. */
export function chatOf(hit, me) {
  if (isGroupId(hit.to)) return hit.to;
  return hit.from === me ? hit.to : hit.from;
}

export class SearchPanel {
  /** `run(query)` sends a search and returns its command id (null: offline); `open(chat)` opens a chat. */
  constructor({ store, run, open }) {
    this.store = store;
    this.run = run;
    this.open = open;
    this.pending = null; // the command id of the search whose answer is awaited
    this.words = [];
    this.timer = null;
    this.box = $("search-box");
    this.list = $("search-results");
    this.status = $("search-status");
    this.onInput = () => this.schedule();
    this.onClick = (e) => {
      const li = e.target.closest(".search-hit");
      if (li) this.open(li.dataset.chat);
    };
    this.onKey = (e) => {
      if (e.key === "Escape") this.clear();
    };
    this.box.addEventListener("input", this.onInput);
    this.box.addEventListener("keydown", this.onKey);
    this.list.addEventListener("click", this.onClick);
  }

  destroy() {
    clearTimeout(this.timer);
    document.body.classList.remove("searching");
    this.box.removeEventListener("input", this.onInput);
    this.box.removeEventListener("keydown", this.onKey);
    this.list.removeEventListener("click", this.onClick);
  }

  clear() {
    this.box.value = "";
    this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.ask(), PAUSE_MS);
  }

  ask() {
    const query = this.box.value.trim().slice(0, 200);
    const searching = query !== "";
    document.body.classList.toggle("searching", searching);
    this.pending = null;
    if (!searching) {
      this.list.replaceChildren();
      this.status.textContent = "";
      return;
    }
    this.words = queryWords(query);
    this.pending = this.run(query);
    this.status.textContent = this.pending ? "Searching…" : "Offline: try again when connected";
  }

  /** A `search_results` event; true when it was this panel's. */
  onResults(answer) {
    if (!answer.ref || answer.ref !== this.pending) return false;
    this.pending = null;
    const hits = Array.isArray(answer.hits) ? answer.hits.filter((h) => h && typeof h.text === "string") : [];
    this.status.textContent = hits.length ? "" : "No messages found";
    this.list.replaceChildren(...hits.map((hit) => this.row(hit)));
    return true;
  }

  /** An `error` event; true when it answered this panel's search. */
  onError(error, message) {
    if (!error.ref || error.ref !== this.pending) return false;
    this.pending = null;
    this.status.textContent = `Cannot search: ${message}`;
    return true;
  }

  row(hit) {
    const chat = chatOf(hit, this.store.user);
    const conv = this.store.convs.get(chat);
    const li = el("li", "search-hit");
    li.dataset.chat = chat;
    li.dataset.message = hit.id;
    const top = el("div", "search-top");
    top.append(el("span", "search-chat", conv ? this.store.titleOf(conv) : this.store.nameOf(chat)));
    top.append(el("span", "search-time", listTime(hit.ts)));
    const [before, match, after] = snippet(hit.text, this.words);
    const text = el("div", "search-snippet");
    if (isGroupId(hit.to) || hit.from === this.store.user) {
      text.append(el("span", "search-from", `${hit.from === this.store.user ? "You" : this.store.nameOf(hit.from)}: `));
    }
    text.append(document.createTextNode(before), el("mark", "", match), document.createTextNode(after));
    li.append(top, text);
    return li;
  }
}
