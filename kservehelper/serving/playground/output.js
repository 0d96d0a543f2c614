// What a model returns, on the page: JSON for reading, images, audio and video inline (from
// URLs and data: URIs), and stream records as they arrive.

import { element, formatBytes } from "./dom.js";

const IMAGE = /\.(png|jpe?g|gif|webp|bmp|svg|avif)$/;
const AUDIO = /\.(wav|mp3|ogg|oga|flac|m4a|aac|opus)$/;
const VIDEO = /\.(mp4|webm|ogv|mov)$/;

// "image", "audio", "video", "file" (another data: URI), or null (not a file we can show).
// Only http(s) URLs and data: URIs count: nothing else becomes a src or a link.
export function mediaKind(value) {
  if (typeof value !== "string") return null;
  const data = /^data:([a-z]+)\/[-+.\w]+[;,]/i.exec(value);
  if (data) {
    const family = data[1].toLowerCase();
    return ["image", "audio", "video"].includes(family) ? family : "file";
  }
  if (!/^https?:\/\/\S+$/i.test(value)) return null;
  const path = value.split(/[?#]/)[0].toLowerCase();
  if (IMAGE.test(path)) return "image";
  if (AUDIO.test(path)) return "audio";
  if (VIDEO.test(path)) return "video";
  return null;
}

// Every file found anywhere in `value` (a response, a stream item), shown once, into `box`.
export function showMedia(value, box) {
  const seen = new Set();
  const visit = (node) => {
    if (typeof node === "string") {
      const kind = mediaKind(node);
      if (kind && !seen.has(node)) {
        seen.add(node);
        box.append(mediaElement(kind, node));
      }
    } else if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === "object") Object.values(node).forEach(visit);
  };
  visit(value);
}

function mediaElement(kind, url) {
  if (kind === "image") return element("img", { src: url, alt: "model output", class: "output-image" });
  if (kind === "audio") return element("audio", { src: url, controls: true, class: "output-audio" });
  if (kind === "video") return element("video", { src: url, controls: true, class: "output-video" });
  return element("a", { href: url, download: "output", text: "download the output file" });
}

// JSON for reading: long data: URIs shortened (the media above shows them).
export function forDisplay(value, indent = 2) {
  return JSON.stringify(
    value,
    (key, item) => {
      if (typeof item === "string" && item.startsWith("data:") && item.length > 120) {
        const comma = item.indexOf(",");
        const bytes = Math.round(((item.length - comma - 1) * 3) / 4);
        return `${item.slice(0, comma + 1)}… (${formatBytes(bytes)})`;
      }
      return item;
    },
    indent,
  );
}

// One stream item as a list entry: its media, and its value as text.
export function streamItem(data) {
  const item = element("li", { class: "item" });
  const media = element("div", {});
  showMedia(data, media);
  if (media.childElementCount) item.append(media);
  const text = typeof data === "string" && !mediaKind(data) ? data : forDisplay(data, 0);
  item.append(element("code", { text }));
  return item;
}

// The records of a streamed response, each as soon as it has arrived whole: JSON lines, or
// server-sent events (`data: {...}` and a blank line). A record is {id, data} or {id, error}.
export async function* streamRecords(response, sse) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const separator = sse ? /\r?\n\r?\n/ : /\r?\n/;
  const parse = (chunk) => (sse ? parseEvent(chunk) : chunk.trim() ? JSON.parse(chunk) : null);
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const parts = buffer.split(separator);
    buffer = parts.pop();
    for (const part of parts) {
      const record = parse(part);
      if (record) yield record;
    }
  }
  const last = buffer.trim() ? parse(buffer) : null;
  if (last) yield last;
}

function parseEvent(chunk) {
  const data = chunk
    .split(/\r?\n/)
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).trimStart())
    .join("\n");
  return data ? JSON.parse(data) : null;
}
