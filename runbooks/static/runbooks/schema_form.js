/* Forms generated from an action's JSON Schema (runbooks/actions.py params_schema), and a small
 * validator for the subset of JSON Schema those schemas use, for inline messages before saving.
 * The server validates again on save and stays the authority.
 */
(function (root) {
  "use strict";

  function typeOk(type, value) {
    switch (type) {
      case "integer": return typeof value === "number" && Number.isInteger(value);
      case "number": return typeof value === "number" && isFinite(value);
      case "string": return typeof value === "string";
      case "boolean": return typeof value === "boolean";
      case "array": return Array.isArray(value);
      case "object": return value !== null && typeof value === "object" && !Array.isArray(value);
      case "null": return value === null;
      default: return true;
    }
  }

  function join(path, key) {
    if (typeof key === "number") return path + "[" + key + "]";
    return path ? path + "." + key : key;
  }

  /* validate(schema, value) -> [[path, message], …] ("" is the value itself). */
  function validate(schema, value, path) {
    path = path || "";
    var errors = [];
    if (!schema || typeof schema !== "object") return errors;
    var push = function (message) { errors.push([path, message]); };
    if (schema.anyOf) {
      var ok = schema.anyOf.some(function (branch) { return validate(branch, value, path).length === 0; });
      if (!ok) push(schema["x-error"] ? JSON.stringify(value) + " " + schema["x-error"] : "is not an allowed value");
      return errors;
    }
    if (schema.enum && !schema.enum.some(function (option) { return option === value; })) {
      push("must be one of: " + schema.enum.join(", "));
      return errors;
    }
    if (schema.type) {
      var types = Array.isArray(schema.type) ? schema.type : [schema.type];
      if (!types.some(function (t) { return typeOk(t, value); })) {
        push(typeof value === "string" && types.indexOf("array") >= 0 ? "must be a list, not a text"
          : "must be " + types.map(function (t) { return t === "integer" ? "a whole number" : "a " + t; }).join(" or "));
        return errors;
      }
    }
    if (typeof value === "string") {
      if (schema.minLength && value.length < schema.minLength) push(schema.minLength === 1 ? "must not be empty" : "is too short");
      if (schema.pattern && !new RegExp(schema.pattern).test(value)) {
        push(schema["x-error"] ? JSON.stringify(value) + " " + schema["x-error"] : "does not have the expected form");
      }
    }
    if (typeof value === "number") {
      if (schema.minimum !== undefined && value < schema.minimum) push("must be at least " + schema.minimum);
      if (schema.maximum !== undefined && value > schema.maximum) push("must be at most " + schema.maximum);
      if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
        push("must be greater than " + schema.exclusiveMinimum);
      }
    }
    if (Array.isArray(value)) {
      if (schema.minItems && value.length < schema.minItems) push("needs at least " + schema.minItems + " item(s)");
      if (schema.items) value.forEach(function (item, i) { errors = errors.concat(validate(schema.items, item, join(path, i))); });
    }
    if (typeOk("object", value)) {
      (schema.required || []).forEach(function (key) {
        if (value[key] === undefined) errors.push([join(path, key), "this field is required"]);
      });
      var props = schema.properties || {};
      Object.keys(value).forEach(function (key) {
        if (props[key]) errors = errors.concat(validate(props[key], value[key], join(path, key)));
        else if (schema.additionalProperties === false) {
          errors.push([join(path, key), "unknown field (allowed: " + Object.keys(props).sort().join(", ") + ")"]);
        } else if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
          errors = errors.concat(validate(schema.additionalProperties, value[key], join(path, key)));
        }
      });
    }
    return errors;
  }

  function branchTypes(schema) {
    if (schema.anyOf) return schema.anyOf.map(function (b) { return b.type; });
    return Array.isArray(schema.type) ? schema.type : [schema.type];
  }

  /* Which control edits a property. */
  function kindOf(schema) {
    if (schema.enum) return "enum";
    var types = branchTypes(schema);
    if (schema.anyOf && (types[0] === "integer" || types[0] === "number") && types[1] === "string") return "number";
    if (schema.anyOf || types.length !== 1) return "json";
    var t = types[0];
    if (t === "boolean") return "boolean";
    if (t === "string") return "string";
    if (t === "integer" || t === "number") return "number";
    if (t === "array" && schema.items && schema.items.type === "string") return "lines";
    if (t === "array" && schema.items && schema.items.type === "integer") return "intlist";
    if (t === "object" && schema.additionalProperties && schema.additionalProperties.type === "string" &&
      !schema.properties) return "map";
    return "json";
  }

  var HINTS = {
    "enum": "", boolean: "Leave at “default” to use the action's default.", string: "",
    number: "A number, or a {{ template }}.", lines: "One item per line.", intlist: "Whole numbers separated by commas.",
    map: "One NAME=value per line.", json: "JSON, e.g. 200 or [200, 204] or {\"key\": \"value\"}.",
  };
  var LONG_TEXT = { instructions: true, query: true, body: true };

  function format(kind, value) {
    if (value === undefined || value === null) return "";
    switch (kind) {
      case "lines": return Array.isArray(value) ? value.join("\n") : String(value);
      case "intlist": return Array.isArray(value) ? value.join(", ") : String(value);
      case "map": return typeof value === "object" ? Object.keys(value).map(function (k) { return k + "=" + value[k]; }).join("\n") : String(value);
      case "json": return typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value, null, 1);
      case "boolean": return value === true ? "true" : value === false ? "false" : "";
      default: return String(value);
    }
  }

  /* Text of a control → [value (undefined = leave out), parse error or null]. */
  function parse(kind, text) {
    var t = text.trim();
    if (t === "") return [undefined, null];
    switch (kind) {
      case "number": return [/^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t, null];
      case "boolean": return [t === "true", null];
      case "lines": return [text.split("\n").map(function (s) { return s.trim(); }).filter(Boolean), null];
      case "intlist": return [t.split(/[\s,]+/).filter(Boolean).map(function (s) { return /^-?\d+$/.test(s) ? Number(s) : s; }), null];
      case "map": {
        var out = {}, bad = null;
        text.split("\n").forEach(function (line, i) {
          if (!line.trim()) return;
          var at = line.indexOf("=");
          if (at < 1) bad = "line " + (i + 1) + " is not NAME=value";
          else out[line.slice(0, at).trim()] = line.slice(at + 1);
        });
        return [out, bad];
      }
      case "json":
        try { return [JSON.parse(t), null]; } catch (e) { return [undefined, "is not valid JSON (" + e.message + ")"]; }
      default: return [text, null];
    }
  }

  function node(tag, attrs, parent, text) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (attrs[k] !== undefined && attrs[k] !== null) n.setAttribute(k, attrs[k]); });
    if (text !== undefined) n.textContent = text;
    if (parent) parent.appendChild(n);
    return n;
  }

  /* Render one control per property of `schema` into `container`. `onChange(value, parseErrors)` gets
   * the whole object (properties left empty are left out). Returns {showErrors(list of [path, msg])}. */
  function render(container, schema, value, options) {
    var opts = options || {};
    var prefix = opts.idPrefix || "param";
    var current = Object.assign({}, value || {});
    var parseErrors = {};
    var props = schema.properties || {};
    var required = schema.required || [];
    var fields = {};
    container.textContent = "";
    var keys = Object.keys(props).sort(function (a, b) {
      return (required.indexOf(b) >= 0) - (required.indexOf(a) >= 0);
    });
    if (!keys.length) node("p", { "class": "hint" }, container, "This action has no parameters.");
    keys.forEach(function (key) {
      var ps = props[key];
      var kind = kindOf(ps);
      var id = prefix + "-" + key;
      var wrap = node("div", { "class": "field" }, container);
      node("label", { "for": id }, wrap, key + (required.indexOf(key) >= 0 ? " (required)" : ""));
      var control;
      if (kind === "enum" || kind === "boolean") {
        control = node("select", { id: id }, wrap);
        node("option", { value: "" }, control, required.indexOf(key) >= 0 ? "— choose —" : "— default —");
        (kind === "enum" ? ps.enum : ["true", "false"]).forEach(function (option) {
          node("option", { value: String(option) }, control, String(option));
        });
      } else if (kind === "string" && !LONG_TEXT[key]) {
        control = node("input", { id: id, type: "text" }, wrap);
      } else if (kind === "number" || kind === "intlist") {
        control = node("input", { id: id, type: "text", inputmode: kind === "number" && !ps.anyOf ? "decimal" : null }, wrap);
      } else {
        control = node("textarea", { id: id, rows: kind === "json" || LONG_TEXT[key] ? 3 : 2 }, wrap);
      }
      control.value = format(kind, current[key]);
      if (opts.readOnly) control.disabled = true;
      var hintText = HINTS[kind] + (ps.description ? " " + ps.description : "");
      var describedBy = [];
      if (hintText.trim()) { node("p", { "class": "hint", id: id + "-hint" }, wrap, hintText.trim()); describedBy.push(id + "-hint"); }
      var error = node("p", { "class": "field-error", id: id + "-error" }, wrap);
      describedBy.push(id + "-error");
      control.setAttribute("aria-describedby", describedBy.join(" "));
      fields[key] = { control: control, error: error };
      var update = function () {
        var parsed = parse(kind, control.value);
        if (parsed[1]) parseErrors[key] = parsed[1]; else delete parseErrors[key];
        if (!parsed[1]) {
          if (parsed[0] === undefined) delete current[key]; else current[key] = parsed[0];
        }
        if (opts.onChange) opts.onChange(Object.assign({}, current), Object.assign({}, parseErrors));
      };
      control.addEventListener(control.tagName === "SELECT" ? "change" : "input", update);
    });

    function showErrors(list) {
      var byKey = {};
      Object.keys(parseErrors).forEach(function (k) { byKey[k] = [parseErrors[k]]; });
      (list || []).forEach(function (pair) {
        var key = String(pair[0]).split(/[.[]/)[0];
        var where = pair[0].slice(key.length);
        (byKey[key] = byKey[key] || []).push((where ? where.replace(/^\./, "") + ": " : "") + pair[1]);
      });
      Object.keys(fields).forEach(function (key) {
        var f = fields[key];
        var messages = byKey[key] || [];
        f.error.textContent = messages.length ? "⚠ " + messages.join("; ") : "";
        if (messages.length) f.control.setAttribute("aria-invalid", "true"); else f.control.removeAttribute("aria-invalid");
        delete byKey[key];
      });
      return byKey; // messages for keys without a control (e.g. unknown fields)
    }
    return { showErrors: showErrors, parseErrors: function () { return Object.assign({}, parseErrors); } };
  }

  root.DRPlanSchemaForm = { render: render, validate: validate, kindOf: kindOf, parse: parse, format: format };
})(typeof self !== "undefined" ? self : this);
