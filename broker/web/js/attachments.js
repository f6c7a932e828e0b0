// Voice notes and documents in the chat (docs/protocol.md, "Voice notes and documents"): the audio
// player with its waveform, the document card, what a picked file is sent as, and recording.
//
// A document is never shown inline (no iframe, object or embed): its card offers a download, made
// by the server as an attachment (Content-Disposition), so the browser saves it whatever it is.

const WAVEFORM_BARS = 64;

/** What a message's media (or an upload's) is when it is not a picture: "voice", "document" or null. */
export function attachmentKind(media, upload) {
  const kind = media?.kind || upload?.kind;
  if (kind === "voice" || kind === "document" || kind === "audio") return kind === "audio" ? "document" : kind;
  if (media && !kind && !/^(image|video)\//.test(media.type)) return "document"; // an unknown kind: a file
  return null;
}

/** What a picked file is sent as: photos and videos as media, audio as a voice note, the rest as a document. */
export function uploadKindOf(file) {
  const type = file.type || "";
  if (type.startsWith("image/") || type.startsWith("video/")) return null;
  if (type.startsWith("audio/")) return "voice";
  return "document";
}

/** The chat list's words for an attachment. */
export function attachmentLabel(media, upload) {
  if (attachmentKind(media, upload) === "voice") return "🎤 Voice message";
  const name = media?.name || upload?.name;
  return `📄 ${name || "Document"}`;
}

export function formatSize(bytes) {
  if (typeof bytes !== "number") return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (typeof seconds !== "number" || !isFinite(seconds)) return "";
  const whole = Math.max(0, Math.floor(seconds)); // as players count
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Bars of a voice note's waveform (levels 0-100; flat when the server did not measure it). */
function waveformNode(levels) {
  const box = el("div", "waveform");
  const values = Array.isArray(levels) && levels.length ? levels : new Array(WAVEFORM_BARS).fill(12);
  box.classList.toggle("unmeasured", !Array.isArray(levels));
  for (const level of values) {
    const bar = el("span", "bar");
    bar.style.height = `${Math.max(6, Math.min(100, level))}%`;
    box.append(bar);
  }
  return box;
}

/**
 * A voice note: an <audio controls> player (its bytes fetched with the user's credentials through
 * the signed link, as photos are) and the waveform, whose bars fill as it plays; a click on the
 * waveform seeks.
 */
export function voiceNode({ media, upload, api, onLoad }) {
  const box = el("div", "voice");
  const audio = el("audio");
  audio.controls = true;
  audio.preload = "metadata";
  const bars = waveformNode(media?.waveform);
  const length = el("span", "voice-length", formatDuration(media?.duration));
  const paint = () => {
    const total = audio.duration || media?.duration || 0;
    const played = total ? audio.currentTime / total : 0;
    const children = bars.children;
    for (let i = 0; i < children.length; i += 1) children[i].classList.toggle("played", i / children.length < played);
  };
  audio.addEventListener("timeupdate", paint);
  audio.addEventListener("loadedmetadata", () => {
    if (!media?.duration && isFinite(audio.duration)) length.textContent = formatDuration(audio.duration);
    onLoad?.();
  });
  bars.addEventListener("click", (event) => {
    const total = audio.duration || media?.duration;
    if (!total || !isFinite(total)) return;
    const rect = bars.getBoundingClientRect();
    audio.currentTime = (total * (event.clientX - rect.left)) / rect.width;
    paint();
  });
  if (upload?.previewUrl) audio.src = upload.previewUrl;
  else if (media) {
    api.url(media.key).then(
      (url) => (audio.src = url),
      (error) => box.append(el("span", "attachment-error", error.message)),
    );
  }
  const row = el("div", "voice-row");
  row.append(el("span", "voice-icon", "🎤"), bars, length);
  box.append(row, audio);
  return box;
}

/** A document: an icon (or a PDF's first page), its name, size and type, and a Download link. */
export function documentNode({ media, upload, api, onLoad }) {
  const card = el("div", "document");
  const name = media?.name || upload?.name || "file";
  const picture = el("div", "document-icon");
  const ext = name.includes(".") ? name.split(".").pop().slice(0, 4).toUpperCase() : "FILE";
  picture.textContent = ext;
  if (media?.thumbnail) {
    const img = el("img");
    img.alt = name;
    img.addEventListener("load", () => onLoad?.());
    api.url(media.thumbnail.key).then(
      (url) => {
        img.src = url;
        picture.replaceChildren(img);
        picture.classList.add("thumbnail");
      },
      () => {},
    );
  }
  const about = el("div", "document-about");
  about.append(el("div", "document-name", name));
  const size = media?.size ?? upload?.file?.size;
  about.append(el("div", "document-size", [formatSize(size), media?.type || ""].filter(Boolean).join(" · ")));
  const link = el("a", "download", media ? "Download" : "Uploading…");
  link.href = "#";
  link.setAttribute("role", "button");
  if (media) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      event.stopPropagation();
      link.textContent = "Downloading…";
      api.downloadLink(media.key).then(
        (url) => {
          // the server (or the bucket) answers this link with Content-Disposition: attachment,
          // so following it saves the file and leaves the page where it is
          const go = el("a");
          go.href = url;
          go.download = name;
          go.rel = "noopener";
          document.body.append(go);
          go.click();
          go.remove();
          link.dataset.href = url;
          link.textContent = "Download";
        },
        (error) => (link.textContent = `Download failed: ${error.message}`),
      );
    });
  }
  about.append(link);
  card.append(picture, about);
  return card;
}

/** A voice recording with MediaRecorder (where the browser has it): start(), then stop() → a Blob. */
export class VoiceRecorder {
  static supported() {
    return typeof MediaRecorder !== "undefined" && Boolean(navigator.mediaDevices?.getUserMedia);
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"].find((t) =>
      MediaRecorder.isTypeSupported(t),
    );
    this.recorder = new MediaRecorder(this.stream, type ? { mimeType: type } : undefined);
    this.chunks = [];
    this.recorder.addEventListener("dataavailable", (event) => event.data.size && this.chunks.push(event.data));
    this.recorder.start();
  }

  /** Stop, release the microphone, and resolve to the recording. */
  stop() {
    return new Promise((resolve) => {
      this.recorder.addEventListener(
        "stop",
        () => {
          for (const track of this.stream.getTracks()) track.stop();
          resolve(new Blob(this.chunks, { type: this.recorder.mimeType || "audio/webm" }));
        },
        { once: true },
      );
      this.recorder.stop();
    });
  }

  cancel() {
    if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
    for (const track of this.stream?.getTracks() || []) track.stop();
  }
}
