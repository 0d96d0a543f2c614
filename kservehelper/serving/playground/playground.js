// kservehelper playground: a form generated from GET /v1/models/NAME/schema, which sends the
// inputs as JSON to the model's route and shows what comes back (JSON, images and audio,
// stream items as they arrive, and the server's field errors next to their fields).
//
// Plain browser JavaScript, no build step and no dependencies. Everything the model or the
// server says is put on the page as text (textContent), never as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { root: "/", model: null, schema: null, method: null, fields: new Map() };

  // -- where we are ------------------------------------------------------------------------

  // "/" (or "/prefix/") shows the served model; "/…/v1/models/NAME/playground" shows NAME.
  function locate() {
    const path = window.location.pathname;
    const match = path.match(/^(.*\/)v1\/models\/([^/]+)\/playground\/?$/);
    if (match) return { root: match[1], model: decodeURIComponent(match[2]) };
    return { root: path.endsWith("/") ? path : path.replace(/[^/]*$/, ""), model: null };
  }

  const modelURL = (name) => state.root + "v1/models/" + encodeURIComponent(name);
  const routeURL = (path) => state.root + path.replace(/^\//, "");

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = { error: "the server answered " + response.status + " without JSON" };
    }
    return { status: response.status, ok: response.ok, body };
  }

  // -- start ------------------------------------------------------------------------------

  async function start() {
    const where = locate();
    state.root = where.root;
    let names = [];
    try {
      const listed = await getJSON(state.root + "playground/models");
      if (listed.ok && Array.isArray(listed.body.models)) names = listed.body.models;
    } catch (error) {
      names = [];
    }
    const name = where.model || names[0];
    if (!name) {
      setStatus("No model is served here.", "failed");
      $("fields").textContent = "";
      return;
    }
    if (!where.model && names.length > 1) {
      const select = $("model-select");
      for (const each of names) select.append(new Option(each, each));
      select.value = name;
      select.addEventListener("change", () => loadModel(select.value));
      $("model-choice").hidden = false;
    }
    $("form").addEventListener("submit", submit);
    $("reset").addEventListener("click", () => {
      renderForm();
      clearOutput();
      setStatus("Fill in the inputs and press Run.", "");
    });
    $("method-select").addEventListener("change", () => {
      state.method = $("method-select").value;
      clearOutput();
    });
    await loadModel(name);
  }

  async function loadModel(name) {
    state.model = name;
    $("model-name").textContent = name;
    document.title = name + " · kservehelper playground";
    $("schema-link").href = modelURL(name) + "/schema";
    $("run").disabled = true;
    clearOutput();
    for (let attempt = 0; ; attempt++) {
      let answer;
      try {
        answer = await getJSON(modelURL(name) + "/schema");
      } catch (error) {
        setStatus("Could not reach the server: " + error.message, "failed");
        return;
      }
      if (answer.ok) {
        state.schema = answer.body;
        break;
      }
      if (answer.status === 503 && attempt < 150) {
        setStatus("The model is loading… (" + (answer.body.error || "not ready") + ")", "");
        await new Promise((resolve) => setTimeout(resolve, 2000));
        continue;
      }
      setStatus("HTTP " + answer.status + ": " + (answer.body.error || "no schema"), "failed");
      return;
    }
    const methods = Object.keys(state.schema.methods || { predict: {} });
    state.method = methods[0];
    const select = $("method-select");
    select.textContent = "";
    for (const method of methods) select.append(new Option(method, method));
    $("method-choice").hidden = methods.length < 2;
    renderForm();
    setStatus("Fill in the inputs and press Run.", "");
    $("run").disabled = false;
  }

  function methodInfo() {
    const methods = state.schema.methods || {};
    const info = methods[state.method];
    if (info && info.path) return info;
    return { path: "/v1/models/" + state.model + ":predict", output: state.schema.output };
  }

  // -- the form ---------------------------------------------------------------------------

  // A property without its Optional wrapper: {"anyOf": [X, {"type": "null"}]} is X, nullable.
  function unwrap(prop) {
    if (!Array.isArray(prop.anyOf)) return { ...prop, nullable: false };
    const branches = prop.anyOf.filter((branch) => branch.type !== "null");
    const nullable = branches.length < prop.anyOf.length;
    const merged = { ...prop };
    delete merged.anyOf;
    if (branches.length === 1) return { ...branches[0], ...merged, nullable };
    return { ...merged, type: "json", nullable };
  }

  function kindOf(spec) {
    if (Array.isArray(spec.enum)) return "choice";
    if (spec.type === "boolean") return "boolean";
    if (spec.type === "integer" || spec.type === "number") return "number";
    if (spec.type === "string" && spec.format === "uri") return "file";
    if (spec.type === "string" && spec.format === "password") return "secret";
    if (spec.type === "string") return "text";
    if (spec.type === "array") return "list";
    return "json";
  }

  function typeLabel(spec) {
    const kind = kindOf(spec);
    if (kind === "list") return "list of " + typeLabel(unwrap(spec.items || {}));
    if (kind === "choice") return "choice";
    if (kind === "file" || kind === "secret") return kind;
    if (kind === "json") return "JSON";
    return spec.type;
  }

  function constraints(spec) {
    const parts = [];
    const low = spec.minimum ?? spec.exclusiveMinimum;
    const high = spec.maximum ?? spec.exclusiveMaximum;
    const lowSign = spec.minimum !== undefined ? "≤" : "<";
    const highSign = spec.maximum !== undefined ? "≤" : "<";
    if (low !== undefined && high !== undefined) parts.push(`${low} ${lowSign} value ${highSign} ${high}`);
    else if (low !== undefined) parts.push(`value ${lowSign === "≤" ? "≥" : ">"} ${low}`);
    else if (high !== undefined) parts.push(`value ${highSign} ${high}`);
    const unit = spec.type === "array" ? "items" : "characters";
    const least = spec.type === "array" ? spec.minItems : spec.minLength;
    const most = spec.type === "array" ? spec.maxItems : spec.maxLength;
    if (least !== undefined && most !== undefined) parts.push(`${least} to ${most} ${unit}`);
    else if (least !== undefined) parts.push(`at least ${least} ${unit}`);
    else if (most !== undefined) parts.push(`at most ${most} ${unit}`);
    if (spec.pattern) parts.push("matches " + spec.pattern);
    if (spec.type === "array" && spec.items) {
      const each = constraints(unwrap(spec.items));
      if (each.length) parts.push("each: " + each.join(", "));
    }
    return parts;
  }

  function element(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key in node && key !== "list") node[key] = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  const absent = { present: false };
  const present = (value) => ({ present: true, value });

  function readAsDataURL(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  function formatBytes(size) {
    if (size < 1024) return size + " B";
    if (size < 1024 * 1024) return (size / 1024).toFixed(1) + " KB";
    return (size / 1024 / 1024).toFixed(1) + " MB";
  }

  // A file picker beside a text box: the file replaces what is typed, as a data: URI (file
  // inputs) or as base64 content (string inputs, like `kservehelper predict -i name=@file`).
  function filePicker(id, onChange, note) {
    const input = element("input", { type: "file", id });
    const button = element("label", { class: "file-button", for: id, text: note });
    const info = element("span", { class: "file-info" });
    const clear = element("button", { type: "button", class: "small", text: "clear", hidden: true });
    const line = element("div", { class: "file-line" }, input, button, info, clear);
    const picked = { dataURL: null };
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      picked.dataURL = await readAsDataURL(file);
      info.textContent = `${file.name} (${formatBytes(file.size)})`;
      clear.hidden = false;
      onChange(true);
    });
    clear.addEventListener("click", () => {
      picked.dataURL = null;
      input.value = "";
      info.textContent = "";
      clear.hidden = true;
      onChange(false);
    });
    return { line, picked };
  }

  // One control for one value of `spec`: {node, read() -> {present, value}, set(value)}.
  // `item`: a list's item, kept to one line.
  function makeWidget(spec, id, required, item = false) {
    const kind = kindOf(spec);
    if (kind === "choice") {
      const select = element("select", { id });
      // A blank choice sends nothing: for an input that may be left out and has no default.
      const blank = spec.nullable || (!required && (spec.default === undefined || spec.default === null));
      if (blank) select.append(new Option("—", ""));
      spec.enum.forEach((value, index) => select.append(new Option(String(value), String(index))));
      return {
        node: select,
        read: () => (select.value === "" ? absent : present(spec.enum[Number(select.value)])),
        set: (value) => {
          const index = spec.enum.findIndex((each) => each === value);
          if (index >= 0) select.value = String(index);
        },
      };
    }
    if (kind === "boolean") {
      const box = element("input", { type: "checkbox", id });
      const label = element("label", { class: "check" }, box, element("span", { text: "yes" }));
      return { node: label, read: () => present(box.checked), set: (value) => (box.checked = Boolean(value)) };
    }
    if (kind === "number") {
      const input = element("input", {
        type: "number",
        id,
        step: spec.type === "integer" ? "1" : "any",
        min: spec.minimum,
        max: spec.maximum,
        inputmode: spec.type === "integer" ? "numeric" : "decimal",
      });
      return {
        node: input,
        read: () => (input.value === "" ? absent : present(Number(input.value))),
        set: (value) => (input.value = String(value)),
      };
    }
    if (kind === "secret") {
      const input = element("input", { type: "password", id, autocomplete: "off" });
      return {
        node: input,
        read: () => (input.value === "" ? absent : present(input.value)),
        set: () => {},
      };
    }
    if (kind === "file" || kind === "text") {
      // Free text (no length limit, no pattern) gets a text area, and may come from a file.
      const free = kind === "text" && !item && spec.maxLength === undefined && !spec.pattern;
      const box = free
        ? element("textarea", { id, rows: 2 })
        : element("input", {
            type: kind === "file" ? "url" : "text",
            id,
            maxlength: spec.maxLength,
            placeholder: kind === "file" ? "https://… or choose a file" : undefined,
          });
      if (!free && kind === "text") {
        return {
          node: box,
          read: () => (box.value === "" ? absent : present(box.value)),
          set: (value) => (box.value = String(value)),
        };
      }
      const note = kind === "file" ? "choose a file" : "or use a file (sent as base64)";
      const picker = filePicker(id + "-file", (chosen) => (box.disabled = chosen), note);
      return {
        node: element("div", {}, box, picker.line),
        read: () => {
          const data = picker.picked.dataURL;
          if (data !== null) return present(kind === "file" ? data : data.slice(data.indexOf(",") + 1));
          return box.value === "" ? absent : present(box.value);
        },
        set: (value) => (box.value = String(value)),
      };
    }
    if (kind === "list") return makeList(spec, id);
    const area = element("textarea", { id, rows: 3, placeholder: "JSON" });
    return {
      node: area,
      read: () => {
        if (area.value.trim() === "") return absent;
        try {
          return present(JSON.parse(area.value));
        } catch (error) {
          throw new Error("not valid JSON: " + error.message);
        }
      },
      set: (value) => (area.value = JSON.stringify(value)),
    };
  }

  // A list: one row per item, each with the item's control and a remove button.
  function makeList(spec, id) {
    const itemSpec = unwrap(spec.items || {});
    const rows = element("div", { class: "rows", id });
    const items = [];
    let count = 0;
    let touched = false;
    function addItem(value) {
      const widget = makeWidget(itemSpec, `${id}-${count++}`, true, true);
      const remove = element("button", { type: "button", class: "small", text: "remove" });
      const row = element("div", { class: "row" }, widget.node, remove);
      const entry = { widget, row };
      remove.addEventListener("click", () => {
        items.splice(items.indexOf(entry), 1);
        row.remove();
        touched = true;
      });
      items.push(entry);
      rows.append(row);
      if (value !== undefined) widget.set(value);
      return widget;
    }
    const add = element("button", { type: "button", class: "small", text: "+ add item" });
    add.addEventListener("click", () => {
      addItem();
      touched = true;
    });
    return {
      node: element("div", {}, rows, add),
      read: () => {
        const values = [];
        for (const { widget } of items) {
          const item = widget.read();
          if (item.present) values.push(item.value);
        }
        if (values.length === 0 && !(touched && Array.isArray(spec.default))) return absent;
        return present(values);
      },
      set: (value) => {
        if (Array.isArray(value)) value.forEach((each) => addItem(each));
      },
    };
  }

  function renderForm() {
    const input = (state.schema && state.schema.input) || {};
    const props = input.properties || {};
    const required = new Set(input.required || []);
    const order = (name) => props[name]["x-order"] ?? 0;
    const names = Object.keys(props).sort((a, b) => order(a) - order(b));
    const box = $("fields");
    box.textContent = "";
    state.fields.clear();
    if (names.length === 0) box.append(element("p", { class: "muted", text: "This model takes no inputs." }));
    names.forEach((name, index) => {
      const spec = unwrap(props[name]);
      const isRequired = required.has(name);
      const id = "in-" + index;
      const widget = makeWidget(spec, id, isRequired);
      if (spec.default !== undefined && spec.default !== null) widget.set(spec.default);
      const kind = kindOf(spec);
      const title = element(
        kind === "boolean" || kind === "list" ? "span" : "label",
        { class: "label", for: kind === "boolean" || kind === "list" ? undefined : id },
        element("span", { class: "name", text: name }),
        element("span", { class: "type", text: typeLabel(spec) }),
        isRequired ? element("span", { class: "required", text: "required" }) : null,
      );
      const hints = constraints(spec);
      if (spec.default !== undefined && kind !== "secret") hints.push("default: " + JSON.stringify(spec.default));
      const error = element("p", { class: "error", role: "alert", hidden: true });
      const field = element(
        "div",
        { class: "field", "data-field": name },
        title,
        spec.description ? element("p", { class: "help", text: spec.description }) : null,
        widget.node,
        hints.length ? element("p", { class: "hint", text: hints.join(" · ") }) : null,
        error,
      );
      box.append(field);
      state.fields.set(name, { name, spec, widget, field, error });
    });
  }

  // -- errors next to their fields --------------------------------------------------------

  function clearErrors() {
    for (const { field, error } of state.fields.values()) {
      field.classList.remove("invalid");
      error.hidden = true;
      error.textContent = "";
    }
    $("form-error").hidden = true;
    $("form-error").textContent = "";
  }

  function showFieldError(name, message) {
    const entry = state.fields.get(name);
    if (!entry) return false;
    entry.field.classList.add("invalid");
    entry.error.textContent = entry.error.textContent ? entry.error.textContent + "; " + message : message;
    entry.error.hidden = false;
    return true;
  }

  function showFormError(message) {
    const box = $("form-error");
    box.textContent = box.textContent ? box.textContent + "; " + message : message;
    box.hidden = false;
  }

  // Our 400 body: {"error": summary, "detail": [{"loc": [field, index...], "msg", "type"}]}.
  function showRequestErrors(body) {
    const detail = Array.isArray(body.detail) ? body.detail : [];
    let placed = 0;
    for (const item of detail) {
      const loc = Array.isArray(item.loc) ? item.loc : [];
      const rest = loc.slice(1).map((part) => (typeof part === "number" ? `item ${part + 1}` : part));
      const message = (rest.length ? rest.join(".") + ": " : "") + (item.msg || "invalid");
      if (loc.length && showFieldError(String(loc[0]), message)) placed++;
      else showFormError(message);
    }
    if (placed === 0 && detail.length === 0) showFormError(body.error || "the request was refused");
  }

  // -- running ----------------------------------------------------------------------------

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = "status " + (kind || "");
  }

  function clearOutput() {
    $("media").textContent = "";
    $("stream").textContent = "";
    $("stream").hidden = true;
    $("result").textContent = "";
    $("result").hidden = true;
    $("curl-box").hidden = true;
    if (state.fields.size) clearErrors();
  }

  function collectInputs() {
    const payload = {};
    let valid = true;
    for (const { name, widget } of state.fields.values()) {
      try {
        const value = widget.read();
        if (value.present) payload[name] = value.value;
      } catch (error) {
        showFieldError(name, error.message);
        valid = false;
      }
    }
    return valid ? payload : null;
  }

  async function submit(event) {
    event.preventDefault();
    clearOutput();
    const payload = collectInputs();
    if (payload === null) {
      setStatus("Fix the inputs marked in red.", "failed");
      return;
    }
    const info = methodInfo();
    const url = routeURL(info.path);
    const streams = Boolean(info.output && info.output.kind === "stream");
    showCurl(url, payload, streams);
    setStatus("Running…", "");
    $("run").disabled = true;
    const started = performance.now();
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: streams ? "text/event-stream" : "application/json",
        },
        body: JSON.stringify(payload),
      });
      const type = (response.headers.get("content-type") || "").toLowerCase();
      if (response.ok && (type.startsWith("text/event-stream") || type.startsWith("application/x-ndjson"))) {
        await readStream(response, type.startsWith("text/event-stream"), started);
      } else {
        await showResponse(response, started);
      }
    } catch (error) {
      setStatus("The request failed: " + error.message, "failed");
    } finally {
      $("run").disabled = false;
    }
  }

  const seconds = (started) => ((performance.now() - started) / 1000).toFixed(2) + " s";

  async function showResponse(response, started) {
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch (error) {
      body = { error: text.slice(0, 500) || response.statusText };
    }
    if (!response.ok) {
      setStatus(`HTTP ${response.status}: ${body.error || response.statusText}`, "failed");
      if (response.status === 400 || response.status === 422) showRequestErrors(body);
      return;
    }
    setStatus(`Done in ${seconds(started)} (HTTP ${response.status}).`, "ok");
    showMedia(body, $("media"));
    const result = $("result");
    result.textContent = forDisplay(body);
    result.hidden = false;
  }

  // Stream records arrive as JSON lines or server-sent events: {"id", "data"} or {"id", "error"}.
  async function readStream(response, sse, started) {
    const list = $("stream");
    list.hidden = false;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const separator = sse ? /\r?\n\r?\n/ : /\r?\n/;
    let buffer = "";
    let count = 0;
    let failed = false;
    setStatus("Streaming…", "");
    const handle = (chunk) => {
      const record = sse ? parseEvent(chunk) : chunk.trim() ? JSON.parse(chunk) : null;
      if (!record) return;
      if (record.error) {
        failed = true;
        const message = `${record.error.type || "error"}: ${record.error.message || ""}`;
        list.append(element("li", { class: "error", text: message }));
        return;
      }
      count++;
      list.append(streamItem(record.data));
      setStatus(`Streaming… ${count} item${count === 1 ? "" : "s"}`, "");
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const parts = buffer.split(separator);
      buffer = parts.pop();
      parts.forEach(handle);
    }
    if (buffer.trim()) handle(buffer);
    const summary = `${count} item${count === 1 ? "" : "s"} in ${seconds(started)}`;
    setStatus(failed ? `The stream failed after ${summary}.` : `Done: ${summary}.`, failed ? "failed" : "ok");
  }

  function parseEvent(chunk) {
    const data = chunk
      .split(/\r?\n/)
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trimStart())
      .join("\n");
    return data ? JSON.parse(data) : null;
  }

  function streamItem(data) {
    const item = element("li", { class: "item" });
    const media = element("div", {});
    showMedia(data, media);
    if (media.childElementCount) item.append(media);
    const text = typeof data === "string" && !mediaKind(data) ? data : forDisplay(data, 0);
    item.append(element("code", { text }));
    return item;
  }

  // -- showing outputs --------------------------------------------------------------------

  const IMAGE = /\.(png|jpe?g|gif|webp|bmp|svg|avif)$/;
  const AUDIO = /\.(wav|mp3|ogg|oga|flac|m4a|aac|opus)$/;
  const VIDEO = /\.(mp4|webm|ogv|mov)$/;

  // "image", "audio", "video", "file" (another data: URI or URL), or null (not a file).
  function mediaKind(value) {
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

  function showMedia(value, box) {
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

  // JSON for reading: long data: URIs shortened (the images above show them).
  function forDisplay(value, indent = 2) {
    return JSON.stringify(
      value,
      (key, item) => {
        if (typeof item === "string" && item.startsWith("data:") && item.length > 120) {
          const bytes = Math.round(((item.length - item.indexOf(",") - 1) * 3) / 4);
          return `${item.slice(0, item.indexOf(",") + 1)}… (${formatBytes(bytes)})`;
        }
        return item;
      },
      indent,
    );
  }

  function showCurl(url, payload, streams) {
    const shown = {};
    let shortened = false;
    for (const [name, value] of Object.entries(payload)) {
      const entry = state.fields.get(name);
      if (entry && kindOf(entry.spec) === "secret") shown[name] = "$" + name.toUpperCase();
      else if (typeof value === "string" && value.length > 200) {
        shown[name] = "@" + name;
        shortened = true;
      } else shown[name] = value;
    }
    const quote = (text) => "'" + text.replace(/'/g, "'\\''") + "'";
    const lines = [
      `curl -s${streams ? "N" : ""} ${quote(new URL(url, window.location.href).href)} \\`,
      `  -H 'Content-Type: application/json'${streams ? " -H 'Accept: text/event-stream'" : ""} \\`,
      `  -d ${quote(JSON.stringify(shown))}`,
    ];
    if (shortened) lines.push("# @NAME: the file or long text you gave, left out here");
    $("curl").textContent = lines.join("\n");
    $("curl-box").hidden = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((error) => setStatus("The playground failed to start: " + error.message, "failed"));
  });
})();
