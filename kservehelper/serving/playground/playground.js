// kservehelper playground: the form generated from GET /v1/models/NAME/schema (form.js) sends
// the inputs as JSON to the model's route; what comes back is shown by output.js.
//
// Plain browser JavaScript modules: no build step, no dependencies, nothing from another
// server.

import { element } from "./dom.js";
import { buildForm, clearErrors, kindOf, readInputs, showRequestErrors } from "./form.js";
import { forDisplay, showMedia, streamItem, streamRecords } from "./output.js";

const $ = (id) => document.getElementById(id);
const state = { root: "/", model: null, schema: null, method: null, fields: new Map() };

// -- where we are --------------------------------------------------------------------------

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
  let body;
  try {
    body = await response.json();
  } catch (error) {
    body = { error: "the server answered " + response.status + " without JSON" };
  }
  return { status: response.status, ok: response.ok, body };
}

// -- start ---------------------------------------------------------------------------------

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
    state.fields = buildForm(state.schema, $("fields"));
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
  state.fields = buildForm(state.schema, $("fields"));
  setStatus("Fill in the inputs and press Run.", "");
  $("run").disabled = false;
}

function methodInfo() {
  const info = (state.schema.methods || {})[state.method];
  if (info && info.path) return info;
  return { path: "/v1/models/" + state.model + ":predict", output: state.schema.output };
}

// -- running -------------------------------------------------------------------------------

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
  clearErrors(state.fields, $("form-error"));
}

const seconds = (started) => ((performance.now() - started) / 1000).toFixed(2) + " s";

async function submit(event) {
  event.preventDefault();
  clearOutput();
  const payload = readInputs(state.fields);
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
    const sse = type.startsWith("text/event-stream");
    if (response.ok && (sse || type.startsWith("application/x-ndjson"))) {
      await showStream(response, sse, started);
    } else {
      await showResponse(response, started);
    }
  } catch (error) {
    setStatus("The request failed: " + error.message, "failed");
  } finally {
    $("run").disabled = false;
  }
}

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
    if (response.status === 400 || response.status === 422) {
      showRequestErrors(state.fields, $("form-error"), body);
    }
    return;
  }
  setStatus(`Done in ${seconds(started)} (HTTP ${response.status}).`, "ok");
  showMedia(body, $("media"));
  $("result").textContent = forDisplay(body);
  $("result").hidden = false;
}

async function showStream(response, sse, started) {
  const list = $("stream");
  list.hidden = false;
  let count = 0;
  let failed = false;
  const items = () => `${count} item${count === 1 ? "" : "s"}`;
  setStatus("Streaming…", "");
  for await (const record of streamRecords(response, sse)) {
    if (record.error) {
      failed = true;
      const message = `${record.error.type || "error"}: ${record.error.message || ""}`;
      list.append(element("li", { class: "error", text: message }));
      continue;
    }
    count++;
    list.append(streamItem(record.data));
    setStatus(`Streaming… ${items()}`, "");
  }
  const summary = `${items()} in ${seconds(started)}`;
  setStatus(failed ? `The stream failed after ${summary}.` : `Done: ${summary}.`, failed ? "failed" : "ok");
}

// The same request as a curl command (secrets and long values left out).
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

start().catch((error) => setStatus("The playground failed to start: " + error.message, "failed"));
