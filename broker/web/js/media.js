// Images, videos, voice notes and documents over the media HTTP API (docs/protocol.md, "Media"; avatars: "Profiles"):
// uploads with HTTP Basic, downloads through `GET /media/<key>`, which answers 302 to a signed URL that needs no
// credentials. fetch follows the redirect (and drops the Authorization header when the signed URL
// is on another origin, as object storage is); the bytes become a blob: URL for <img>/<video>.

import { MAX_CAPTION_LENGTH } from "./protocol.js";

export class MediaError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function refusal(response) {
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") return new MediaError(body.code || "error", body.message);
  } catch {
    // not JSON
  }
  return new MediaError("http_" + response.status, `the server answered ${response.status}`);
}

const keyPath = (key) => key.split("/").map(encodeURIComponent).join("/");

export class Media {
  constructor({ base, authorization }) {
    this.base = base.replace(/\/+$/, "");
    this.authorization = authorization;
    this.cache = new Map(); // key -> Promise<blob URL>
  }

  /** Upload a file as a message to `to` with command id `id`; resolves to the server's answer.
   *  `kind` "voice" or "document" (with the file's `name`); none for a photo or video. `replyTo`:
   *  the message it answers. */
  async upload({ to, id, caption = "", file, kind = null, name = null, replyTo = null }) {
    const params = new URLSearchParams({ to, id });
    if (replyTo) params.set("reply_to", replyTo);
    if (caption) params.set("caption", caption.slice(0, MAX_CAPTION_LENGTH));
    if (kind) params.set("kind", kind);
    if (kind === "document" && name) params.set("name", name);
    let response;
    try {
      response = await fetch(`${this.base}/media?${params}`, {
        method: "POST",
        headers: { Authorization: this.authorization },
        body: file,
      });
    } catch (error) {
      throw new MediaError("network", `the upload did not get through (${error.message})`);
    }
    if (response.status !== 200 && response.status !== 202) throw await refusal(response);
    return response.json();
  }

  /** Set (a file) or clear (null) the user's avatar; command id `id`. Resolves to the 202 answer. */
  async avatar({ id, file }) {
    let response;
    try {
      response = await fetch(`${this.base}/media/avatar?${new URLSearchParams({ id })}`, {
        method: file ? "POST" : "DELETE",
        headers: { Authorization: this.authorization },
        body: file || undefined,
      });
    } catch (error) {
      throw new MediaError("network", `the request did not get through (${error.message})`);
    }
    if (response.status !== 200 && response.status !== 202) throw await refusal(response);
    return response.json();
  }

  /** Set a group's icon (an admin's upload); command id `id`. Resolves to the 202 answer. */
  async groupIcon({ group, id, file }) {
    let response;
    try {
      response = await fetch(`${this.base}/media/group-icon?${new URLSearchParams({ group, id })}`, {
        method: "POST",
        headers: { Authorization: this.authorization },
        body: file,
      });
    } catch (error) {
      throw new MediaError("network", `the upload did not get through (${error.message})`);
    }
    if (response.status !== 200 && response.status !== 202) throw await refusal(response);
    return response.json();
  }

  /** A blob: URL with the bytes of the media object `key` (fetched once). */
  url(key) {
    let pending = this.cache.get(key);
    if (!pending) {
      pending = this.fetchBlob(key);
      this.cache.set(key, pending);
      pending.catch(() => this.cache.delete(key)); // try again next time
    }
    return pending;
  }

  async fetchBlob(key) {
    const response = await fetch(`${this.base}/media/${keyPath(key)}`, {
      headers: { Authorization: this.authorization },
      cache: "no-store",
    });
    if (!response.ok) throw await refusal(response);
    return URL.createObjectURL(await response.blob());
  }

  /** A fresh signed link of `key` (the server's 302, followed): the body is not waited for. For a
   *  document the link answers as a download (Content-Disposition: attachment). */
  async downloadLink(key) {
    const controller = new AbortController();
    let response;
    try {
      response = await fetch(`${this.base}/media/${keyPath(key)}`, {
        headers: { Authorization: this.authorization },
        cache: "no-store",
        signal: controller.signal,
      });
    } catch (error) {
      throw new MediaError("network", `the link could not be fetched (${error.message})`);
    }
    if (!response.ok) throw await refusal(response);
    controller.abort(); // the headers are enough: the URL is the signed one
    return response.url;
  }

  close() {
    for (const pending of this.cache.values()) pending.then((url) => URL.revokeObjectURL(url), () => {});
    this.cache.clear();
  }
}
