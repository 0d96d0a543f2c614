// The form: one field per input of the model's JSON schema, with its type, description,
// default and limits, and the server's errors shown next to the field they are about.
//
// Limits are shown, not enforced: the server checks every value and its 400 answer names the
// field, so what the page says is what the API says.

import { element, formatBytes, readAsDataURL } from "./dom.js";

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

export function kindOf(spec) {
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

const absent = { present: false };
const present = (value) => ({ present: true, value });

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

// Fills `box` with the form for `schema` (GET /v1/models/NAME/schema); returns its fields by
// name: {name, spec, widget, field, error}.
export function buildForm(schema, box) {
  const input = (schema && schema.input) || {};
  const props = input.properties || {};
  const required = new Set(input.required || []);
  const order = (name) => props[name]["x-order"] ?? 0;
  const names = Object.keys(props).sort((a, b) => order(a) - order(b));
  const fields = new Map();
  box.textContent = "";
  if (names.length === 0) box.append(element("p", { class: "muted", text: "This model takes no inputs." }));
  names.forEach((name, index) => {
    const spec = unwrap(props[name]);
    const isRequired = required.has(name);
    const id = "in-" + index;
    const widget = makeWidget(spec, id, isRequired);
    if (spec.default !== undefined && spec.default !== null) widget.set(spec.default);
    const kind = kindOf(spec);
    const labelled = kind !== "boolean" && kind !== "list";
    const title = element(
      labelled ? "label" : "span",
      { class: "label", for: labelled ? id : undefined },
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
    fields.set(name, { name, spec, widget, field, error });
  });
  return fields;
}

// The request's JSON object; inputs left empty are left out (their defaults apply). Returns
// null, with the problems shown next to their fields, when a value cannot be read.
export function readInputs(fields) {
  const payload = {};
  let valid = true;
  for (const { name, widget } of fields.values()) {
    try {
      const value = widget.read();
      if (value.present) payload[name] = value.value;
    } catch (error) {
      showFieldError(fields, name, error.message);
      valid = false;
    }
  }
  return valid ? payload : null;
}

// -- errors next to their fields ----------------------------------------------------------

export function clearErrors(fields, formError) {
  for (const { field, error } of fields.values()) {
    field.classList.remove("invalid");
    error.hidden = true;
    error.textContent = "";
  }
  formError.hidden = true;
  formError.textContent = "";
}

function showFieldError(fields, name, message) {
  const entry = fields.get(name);
  if (!entry) return false;
  entry.field.classList.add("invalid");
  entry.error.textContent = entry.error.textContent ? entry.error.textContent + "; " + message : message;
  entry.error.hidden = false;
  return true;
}

function showFormError(formError, message) {
  formError.textContent = formError.textContent ? formError.textContent + "; " + message : message;
  formError.hidden = false;
}

// Our 400 body: {"error": summary, "detail": [{"loc": [field, index...], "msg", "type"}]}.
// Each problem goes next to its field; one about no field (or the whole request) above the
// buttons.
export function showRequestErrors(fields, formError, body) {
  const detail = Array.isArray(body.detail) ? body.detail : [];
  for (const item of detail) {
    const loc = Array.isArray(item.loc) ? item.loc : [];
    const rest = loc.slice(1).map((part) => (typeof part === "number" ? `item ${part + 1}` : part));
    const message = (rest.length ? rest.join(".") + ": " : "") + (item.msg || "invalid");
    if (!(loc.length && showFieldError(fields, String(loc[0]), message))) showFormError(formError, message);
  }
  if (detail.length === 0) showFormError(formError, body.error || "the request was refused");
}
