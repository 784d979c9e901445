/* The visual runbook builder (templates/runbooks/builder.html).
 *
 * State is one runbook document (the shape the API imports). Every change re-renders the graph,
 * the step list, the critical path summary and the inline validation. Saving posts the document
 * to the REST API (session cookie + CSRF token): a new runbook to …/runbooks/import, a new draft
 * version of an existing one to …/runbooks/{slug}/versions. Server errors (the API's
 * {"error": {code, message, fields}} shape) are shown next to the step or field they name.
 */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("builder-config").textContent);
  var readOnly = !cfg.can_edit;
  var $ = function (id) { return document.getElementById(id); };
  var CP = window.DRPlanCriticalPath, SF = window.DRPlanSchemaForm;
  var actions = {};
  cfg.actions.forEach(function (a) { actions[a.name] = a; });

  var SLUG = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
  var SEMVER = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
  var DURATION = /^([0-9]+h([0-9]+m)?([0-9]+s)?|[0-9]+m([0-9]+s)?|[0-9]+s)$/;

  var doc = JSON.parse(JSON.stringify(cfg.doc));
  doc.steps = doc.steps || [];
  doc.parameters = doc.parameters || {};
  doc.approvals = doc.approvals || [];
  if (cfg.mode === "edit") doc.version = cfg.next_version || doc.version;
  var selected = null;
  var serverErrors = { steps: {}, general: [] }; // cleared on any edit of the step / on save
  var paramParseErrors = {};
  var paramForm = null;
  var graph = null;

  function announce(text) { $("status").textContent = text; }
  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function stepById(id) { return doc.steps.find(function (s) { return s.id === id; }); }
  function h(tag, attrs, parent, text) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] === undefined || attrs[k] === null || attrs[k] === false) return;
      n.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
    });
    if (text !== undefined) n.textContent = text;
    if (parent) parent.appendChild(n);
    return n;
  }

  // --- Validation (client side; the server checks everything again) -------------------------

  function reachable(from, to) { // is `to` reachable from `from` following needs?
    var seen = {}, stack = [from];
    while (stack.length) {
      var id = stack.pop();
      if (id === to) return true;
      if (seen[id]) continue;
      seen[id] = true;
      var s = stepById(id);
      if (s) stack.push.apply(stack, s.needs || []);
    }
    return false;
  }

  function stepErrors(step, index) {
    var errors = [];
    if (!SLUG.test(step.id || "")) errors.push(["id", "must start with a letter or digit and use only letters, digits, - and _"]);
    if (doc.steps.some(function (s, i) { return i !== index && s.id === step.id; })) errors.push(["id", "duplicate step id " + JSON.stringify(step.id)]);
    ["timeout", "estimated_duration"].forEach(function (key) {
      var v = step[key];
      if (v !== null && v !== undefined && !(typeof v === "number" && v >= 0) && !DURATION.test(String(v))) {
        errors.push([key, JSON.stringify(v) + " is not a valid duration (use seconds or e.g. '30s', '5m', '1h30m')"]);
      }
    });
    if (step.retries !== undefined && !(Number.isInteger(step.retries) && step.retries >= 0 && step.retries <= 100)) {
      errors.push(["retries", "must be a whole number from 0 to 100"]);
    }
    (step.needs || []).forEach(function (n) { if (!stepById(n)) errors.push(["needs", "unknown step " + JSON.stringify(n)]); });
    var spec = actions[step.action];
    if (!spec) errors.push(["action", "unknown action " + JSON.stringify(step.action)]);
    else SF.validate(spec.params_schema, step["with"] || {}).forEach(function (e) { errors.push(["with" + (e[0] ? "." + e[0] : ""), e[1]]); });
    if (step.rollback) {
      var rb = actions[step.rollback.action];
      if (!rb) errors.push(["rollback.action", "choose the rollback's action"]);
      else SF.validate(rb.params_schema, step.rollback["with"] || {}).forEach(function (e) { errors.push(["rollback.with" + (e[0] ? "." + e[0] : ""), e[1]]); });
    }
    if (step.approval && !step.approval.role) errors.push(["approval.role", "name the role that approves this step"]);
    if (selected === step.id) Object.keys(paramParseErrors).forEach(function (k) { errors.push(["with." + k, paramParseErrors[k]]); });
    return errors;
  }

  function allErrors() {
    var byStep = {}, total = 0;
    doc.steps.forEach(function (s, i) {
      var list = stepErrors(s, i).map(function (e) { return { field: e[0], message: e[1], source: "check" }; });
      (serverErrors.steps[s.id] || []).forEach(function (e) { list.push({ field: e.field, message: e.message, source: "server" }); });
      byStep[s.id] = list;
      total += list.length;
    });
    return { byStep: byStep, total: total };
  }

  // --- Rendering ----------------------------------------------------------------------------

  function refresh() {
    var errs = allErrors();
    var cp = { steps: [], seconds: 0 }, cycle = null;
    try { cp = CP.criticalPath(doc); } catch (e) { cycle = e.message; }
    if (graph) {
      graph.render({
        steps: doc.steps.map(function (s) {
          var est = CP.estimateSeconds(s.estimated_duration);
          return { id: s.id, title: s.title, action: s.action, needs: s.needs || [], errors: errs.byStep[s.id].length,
            duration: s.estimated_duration ? CP.humanDuration(est) : "" };
        }),
        selected: selected, critical: cp.steps,
      });
    }
    renderStepList(errs, cp);
    var unestimated = doc.steps.filter(function (s) { return !CP.estimateSeconds(s.estimated_duration); }).length;
    var summary = $("summary");
    if (cycle) summary.textContent = "⚠ " + cycle + ": remove a dependency.";
    else if (!doc.steps.length) summary.textContent = "No steps yet.";
    else {
      summary.textContent = "Estimated total duration: " + CP.humanDuration(cp.seconds) + " — ★ critical path: " +
        cp.steps.join(" → ") + "." + (unestimated ? " " + unestimated + " step(s) without an estimate count as 0 s." : "") +
        (errs.total ? " ⚠ " + errs.total + " problem(s) to fix before saving." : " ✔ No problems found.");
    }
    if (selected) showStepErrors(errs.byStep[selected] || []);
    renderGeneralErrors();
  }

  function renderStepList(errs, cp) {
    var list = $("step-list");
    list.textContent = "";
    doc.steps.forEach(function (s) {
      var li = h("li", {}, list);
      var parts = [s.title || s.id, "(" + s.id + ", " + s.action + ")"];
      if ((s.needs || []).length) parts.push("needs " + s.needs.join(", "));
      if (cp.steps.indexOf(s.id) >= 0) parts.push("★ critical");
      if (errs.byStep[s.id].length) parts.push("⚠ " + errs.byStep[s.id].length + " problem(s)");
      var b = h("button", { type: "button", "class": "link-button step-link" + (s.id === selected ? " current" : ""),
        "aria-current": s.id === selected ? "true" : null, "data-step": s.id }, li, parts.join(" — "));
      b.addEventListener("click", function () { select(s.id, true); });
    });
  }

  function renderGeneralErrors() {
    var box = $("general-errors");
    box.textContent = "";
    if (!serverErrors.general.length) { box.hidden = true; return; }
    box.hidden = false;
    h("p", {}, box, "⚠ The server refused the document:");
    var ul = h("ul", {}, box);
    serverErrors.general.forEach(function (m) { h("li", {}, ul, m); });
  }

  function field(form, id, label, control, hint) {
    var wrap = h("div", { "class": "field" }, form);
    h("label", { "for": id }, wrap, label);
    control.id = id;
    wrap.appendChild(control);
    var described = [];
    if (hint) { h("p", { "class": "hint", id: id + "-hint" }, wrap, hint); described.push(id + "-hint"); }
    h("p", { "class": "field-error", id: id + "-error" }, wrap);
    described.push(id + "-error");
    control.setAttribute("aria-describedby", described.join(" "));
    if (readOnly) control.disabled = true;
    return control;
  }

  function input(value, type) {
    var i = h("input", { type: type || "text" });
    i.value = value === null || value === undefined ? "" : String(value);
    return i;
  }

  function actionSelect(value, allowNone) {
    var sel = h("select", {});
    if (allowNone) h("option", { value: "" }, sel, "— none —");
    Object.keys(actions).forEach(function (name) { h("option", { value: name }, sel, name); });
    sel.value = value || "";
    return sel;
  }

  function durationValue(text) {
    var t = text.trim();
    if (!t) return null;
    return /^\d+$/.test(t) ? Number(t) : t;
  }

  function select(id, focusForm) {
    selected = id;
    paramParseErrors = {};
    renderStepForm();
    refresh();
    if (focusForm && id) { var first = $("step-id"); if (first) first.focus(); }
  }

  function renderStepForm() {
    var form = $("step-form");
    form.textContent = "";
    var step = selected ? stepById(selected) : null;
    $("step-empty").hidden = !!step;
    form.hidden = !step;
    $("step-heading").textContent = step ? "Step " + step.id : "Step";
    if (!step) return;
    var errorBox = h("div", { id: "step-errors", "class": "step-errors", role: "alert" }, form);
    errorBox.hidden = true;

    var idInput = field(form, "step-id", "Id (required)", input(step.id), "Used by “needs” and {{ steps.ID.output }}.");
    idInput.addEventListener("change", function () {
      var old = step.id, next = idInput.value.trim();
      if (next === old) return;
      doc.steps.forEach(function (s) { s.needs = (s.needs || []).map(function (n) { return n === old ? next : n; }); });
      if (serverErrors.steps[old]) { serverErrors.steps[next] = serverErrors.steps[old]; delete serverErrors.steps[old]; }
      step.id = next;
      selected = next;
      if (graph) graph.rename(old, next);
      $("step-heading").textContent = "Step " + next;
      renderNeeds();
      refresh();
      announce("Renamed step " + old + " to " + next + ".");
    });
    var title = field(form, "step-title", "Title", input(step.title));
    title.addEventListener("input", function () { step.title = title.value; changed(step); });
    var action = field(form, "step-action", "Action (required)", actionSelect(step.action));
    action.addEventListener("change", function () {
      step.action = action.value;
      step["with"] = {};
      if (step.automated !== undefined) step.automated = step.action !== "manual";
      announce("Action changed to " + step.action + "; its parameters were reset.");
      renderStepForm();
      changed(step);
    });
    var desc = field(form, "step-description", "Description", h("textarea", { rows: 2 }));
    desc.value = step.description || "";
    desc.addEventListener("input", function () { step.description = desc.value; changed(step); });

    var needsWrap = h("div", {}, form);
    function renderNeeds() {
      needsWrap.textContent = "";
      var sel = h("select", { multiple: true, size: Math.min(6, Math.max(2, doc.steps.length - 1)) });
      doc.steps.forEach(function (s) {
        if (s.id === step.id) return;
        var wouldCycle = reachable(s.id, step.id) && (step.needs || []).indexOf(s.id) < 0;
        var opt = h("option", { value: s.id, disabled: wouldCycle }, sel, (s.title || s.id) + " (" + s.id + ")" + (wouldCycle ? " — would form a cycle" : ""));
        opt.selected = (step.needs || []).indexOf(s.id) >= 0;
      });
      field(needsWrap, "step-needs", "Needs (steps that must finish first)", sel, "Ctrl/Cmd + click or Shift + arrows to choose several.");
      sel.addEventListener("change", function () {
        step.needs = Array.prototype.filter.call(sel.options, function (o) { return o.selected; }).map(function (o) { return o.value; });
        changed(step);
      });
    }
    renderNeeds();

    var fs = h("fieldset", { "class": "inline-fields" }, form);
    h("legend", {}, fs, "Timing and behaviour");
    var timeout = field(fs, "step-timeout", "Timeout", input(step.timeout), "Seconds or 30s, 5m, 1h30m; empty = none.");
    timeout.addEventListener("input", function () { step.timeout = durationValue(timeout.value); changed(step); });
    var est = field(fs, "step-estimated_duration", "Estimated duration", input(step.estimated_duration), "Used for the critical path.");
    est.addEventListener("input", function () { step.estimated_duration = durationValue(est.value); changed(step); });
    var retries = field(fs, "step-retries", "Retries", input(step.retries || 0, "number"));
    retries.min = 0; retries.max = 100;
    retries.addEventListener("input", function () { step.retries = retries.value === "" ? 0 : Number(retries.value); changed(step); });
    var role = field(fs, "step-responsible_role", "Responsible role", input(step.responsible_role));
    role.addEventListener("input", function () { step.responsible_role = role.value; changed(step); });
    ["idempotent", "continue_on_failure"].forEach(function (key) {
      var wrap = h("div", { "class": "field check" }, fs);
      var box = h("input", { type: "checkbox", id: "step-" + key, "aria-describedby": "step-" + key + "-error" }, wrap);
      box.checked = !!step[key];
      box.disabled = readOnly;
      h("label", { "for": "step-" + key }, wrap, key === "idempotent" ? "Idempotent (safe to run twice)" : "Continue on failure");
      h("p", { "class": "field-error", id: "step-" + key + "-error" }, wrap);
      box.addEventListener("change", function () { step[key] = box.checked; changed(step); });
    });

    var pfs = h("fieldset", {}, form);
    h("legend", {}, pfs, "Parameters of " + step.action + (actions[step.action] ? "" : " (unknown action)"));
    h("p", { "class": "hint" }, pfs, actions[step.action] ? actions[step.action].description : "");
    var paramBox = h("div", { id: "step-params" }, pfs);
    h("p", { "class": "field-error", id: "step-with-error" }, pfs);
    paramForm = actions[step.action] ? SF.render(paramBox, actions[step.action].params_schema, step["with"] || {}, {
      readOnly: readOnly, idPrefix: "with",
      onChange: function (value, parseErrors) { step["with"] = value; paramParseErrors = parseErrors; changed(step); },
    }) : null;

    var afs = h("fieldset", {}, form);
    h("legend", {}, afs, "Approval gate (optional)");
    var approval = step.approval || {};
    var aRole = field(afs, "step-approval-role", "Role that must approve before the step runs", input(approval.role), "Empty = no gate.");
    var aCount = field(afs, "step-approval-approvers", "Approvers", input(approval.approvers || 1, "number"));
    aCount.min = 1;
    var updateApproval = function () {
      step.approval = aRole.value.trim() ? { role: aRole.value.trim(), approvers: Number(aCount.value) || 1 } : null;
      changed(step);
    };
    aRole.addEventListener("input", updateApproval);
    aCount.addEventListener("input", updateApproval);

    var rfs = h("fieldset", {}, form);
    h("legend", {}, rfs, "Rollback (optional)");
    var rb = step.rollback || {};
    var rbAction = field(rfs, "step-rollback-action", "Rollback action", actionSelect(rb.action, true));
    var rbWith = field(rfs, "step-rollback-with", "Rollback parameters (JSON)", h("textarea", { rows: 2 }), "e.g. {\"argv\": [\"pg_ctl\", \"stop\"]}");
    rbWith.value = rb.action ? JSON.stringify(rb["with"] || {}) : "";
    var updateRollback = function () {
      if (!rbAction.value) { step.rollback = null; $("step-rollback-with-error").textContent = ""; changed(step); return; }
      var parsed = {};
      try { parsed = rbWith.value.trim() ? JSON.parse(rbWith.value) : {}; $("step-rollback-with-error").textContent = ""; }
      catch (e) { $("step-rollback-with-error").textContent = "⚠ not valid JSON: " + e.message; return; }
      step.rollback = { action: rbAction.value, "with": parsed };
      changed(step);
    };
    rbAction.addEventListener("change", updateRollback);
    rbWith.addEventListener("input", updateRollback);

    if (!readOnly) {
      var del = h("button", { type: "button", "class": "button danger", id: "delete-step" }, form, "Delete step " + step.id);
      del.addEventListener("click", function () {
        var id = step.id;
        doc.steps = doc.steps.filter(function (s) { return s.id !== id; });
        doc.steps.forEach(function (s) { s.needs = (s.needs || []).filter(function (n) { return n !== id; }); });
        delete serverErrors.steps[id];
        announce("Deleted step " + id + ".");
        select(null);
        $("step-list").focus();
      });
    }
  }

  function showStepErrors(list) {
    var box = $("step-errors");
    if (!box) return;
    var perField = {}, rest = [];
    var paramErrors = [];
    list.forEach(function (e) {
      var f = e.field || "";
      var text = (e.source === "server" ? "Server: " : "") + e.message;
      if (f.indexOf("with") === 0 && f !== "with" && paramForm) paramErrors.push([f.slice(5), text]);
      else if (f === "with") (perField["with"] = perField["with"] || []).push(text);
      else {
        var key = f.replace(/\./g, "-").replace(/\[.*$/, "");
        if (key && $("step-" + key + "-error")) (perField[key] = perField[key] || []).push(text);
        else rest.push((f ? f + ": " : "") + text);
      }
    });
    document.querySelectorAll("#step-form .field-error").forEach(function (p) {
      if (p.id.indexOf("with-") === 0 || p.id === "step-rollback-with-error") return;
      p.textContent = "";
    });
    Object.keys(perField).forEach(function (key) {
      var p = $("step-" + key + "-error");
      if (p) p.textContent = "⚠ " + perField[key].join("; ");
      var control = $("step-" + key);
      if (control) control.setAttribute("aria-invalid", "true");
    });
    if (paramForm) {
      var leftover = paramForm.showErrors(paramErrors);
      Object.keys(leftover).forEach(function (k) { rest.push("with." + k + ": " + leftover[k].join("; ")); });
    }
    box.textContent = "";
    box.hidden = !list.length;
    if (list.length) {
      h("p", {}, box, "⚠ " + list.length + " problem(s) in this step" + (rest.length ? ":" : " (shown next to the fields)."));
      if (rest.length) { var ul = h("ul", {}, box); rest.forEach(function (m) { h("li", {}, ul, m); }); }
    }
  }

  function changed(step) {
    if (step) delete serverErrors.steps[step.id];
    refresh();
  }

  // --- Metadata, parameters and approval levels ----------------------------------------------

  function bindMeta() {
    var map = { name: "meta-name", slug: "meta-slug", version: "meta-version", category: "meta-category",
      application: "meta-application", parallelism: "meta-parallelism", description: "meta-description" };
    Object.keys(map).forEach(function (key) {
      var control = $(map[key]);
      control.value = doc[key] === null || doc[key] === undefined ? "" : String(doc[key]);
      if (readOnly) control.disabled = true;
      control.addEventListener("input", function () {
        var v = control.value;
        if (key === "parallelism") doc[key] = v === "" ? null : Number(v);
        else if (key === "application") doc[key] = v.trim() || null;
        else doc[key] = v;
        $(map[key] + "-error") && ($(map[key] + "-error").textContent = "");
        control.removeAttribute("aria-invalid");
      });
    });
  }

  function rowsEditor(containerId, caption, columns, rows, onAdd, onRemove, onChange) {
    var box = $(containerId);
    box.textContent = "";
    var table = h("table", {}, box);
    h("caption", { "class": "visually-hidden" }, table, caption);
    var head = h("tr", {}, h("thead", {}, table));
    columns.forEach(function (c) { h("th", { scope: "col" }, head, c.label); });
    if (!readOnly) h("th", { scope: "col" }, head, "Remove");
    var body = h("tbody", {}, table);
    rows.forEach(function (row, i) {
      var tr = h("tr", {}, body);
      columns.forEach(function (c) {
        var td = h("td", {}, tr);
        var control;
        if (c.options) {
          control = h("select", {}, td);
          c.options.forEach(function (o) { h("option", { value: o }, control, o); });
        } else control = h("input", { type: c.type || "text" }, td);
        control.setAttribute("aria-label", c.label + " (row " + (i + 1) + ")");
        if (c.type === "checkbox") control.checked = !!row[c.key]; else control.value = row[c.key] === null || row[c.key] === undefined ? "" : String(row[c.key]);
        control.disabled = readOnly || !!c.readonly;
        control.addEventListener(c.type === "checkbox" || c.options ? "change" : "input", function () {
          onChange(i, c.key, c.type === "checkbox" ? control.checked : control.value);
        });
      });
      if (!readOnly) {
        var rm = h("button", { type: "button", "class": "button", "aria-label": "Remove row " + (i + 1) }, h("td", {}, tr), "✖");
        rm.addEventListener("click", function () { onRemove(i); });
      }
    });
    if (!rows.length) h("p", { "class": "empty" }, box, "None.");
    if (!readOnly) {
      var add = h("button", { type: "button", "class": "button" }, box, "+ Add");
      add.addEventListener("click", onAdd);
    }
  }

  function renderParameters() {
    var names = Object.keys(doc.parameters);
    var rows = names.map(function (n) {
      var p = doc.parameters[n];
      return { name: n, type: p.type || "string", "default": p["default"], secret: !!p.secret, description: p.description || "" };
    });
    var write = function () {
      var out = {};
      rows.forEach(function (r) {
        if (!r.name) return;
        var d = r["default"];
        if (d === "" || d === undefined) d = null;
        else if ((r.type === "integer" || r.type === "number") && /^-?\d+(\.\d+)?$/.test(String(d))) d = Number(d);
        else if (r.type === "boolean" && (d === "true" || d === "false")) d = d === "true";
        out[r.name] = { type: r.type, "default": r.secret ? null : d, secret: r.secret, description: r.description };
      });
      doc.parameters = out;
    };
    rowsEditor("parameters", "Parameters", [
      { key: "name", label: "Name" }, { key: "type", label: "Type", options: ["string", "integer", "number", "boolean"] },
      { key: "default", label: "Default" }, { key: "secret", label: "Secret", type: "checkbox" },
      { key: "description", label: "Description" },
    ], rows, function () {
      var n = 1;
      while (doc.parameters["param" + n]) n += 1;
      doc.parameters["param" + n] = { type: "string", "default": null, secret: false, description: "" };
      renderParameters();
    }, function (i) { rows.splice(i, 1); write(); renderParameters(); refresh(); },
    function (i, key, value) { rows[i][key] = value; write(); });
  }

  function renderLevels() {
    doc.approvals.forEach(function (a, i) { a.level = i + 1; });
    rowsEditor("approval-levels", "Approval levels", [
      { key: "level", label: "Level", readonly: true }, { key: "role", label: "Role" },
      { key: "approvers", label: "Approvers", type: "number" }, { key: "required", label: "Required", type: "checkbox" },
    ], doc.approvals, function () {
      doc.approvals.push({ level: doc.approvals.length + 1, role: "approver", required: true, approvers: 1 });
      renderLevels();
    }, function (i) { doc.approvals.splice(i, 1); renderLevels(); },
    function (i, key, value) { doc.approvals[i][key] = key === "approvers" ? Number(value) || 1 : value; });
  }

  // --- The document sent to the API ----------------------------------------------------------

  function buildDocument() {
    var out = JSON.parse(JSON.stringify(doc));
    if (cfg.mode === "edit") out.slug = cfg.runbook.slug;
    else if (!out.slug) delete out.slug;
    if (!out.application) out.application = null;
    out.steps = out.steps.map(function (s) {
      var step = Object.assign({}, s);
      if (!step.title) delete step.title;
      return step;
    });
    return out;
  }

  // --- Talking to the API ---------------------------------------------------------------------

  function api(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  var STEP_PART = /^steps\[(\d+)\](?: \(([^)]*)\))?(?:\.(.+?))?: ([\s\S]*)$/;
  var PATH_PART = /^([A-Za-z_][\w.\[\]-]*): ([\s\S]*)$/;
  var META = ["name", "slug", "version", "application", "parallelism"];

  /* Route the API's error to the steps and fields it names; returns a one-line summary. */
  function showServerError(result, sentSteps) {
    serverErrors = { steps: {}, general: [] };
    var error = result.data && result.data.error;
    if (!error) {
      serverErrors.general.push("HTTP " + result.status + ": the server gave no explanation.");
      refresh();
      return "HTTP " + result.status;
    }
    var fieldKeys = Object.keys(error.fields || {});
    var parts = error.message.split("; ");
    var placedOnStep = 0;
    parts.forEach(function (part) {
      var m = STEP_PART.exec(part);
      if (m) {
        var step = sentSteps[Number(m[1])];
        var id = step ? step.id : m[2];
        (serverErrors.steps[id] = serverErrors.steps[id] || []).push({ field: m[3] || "", message: m[4] });
        placedOnStep += 1;
        return;
      }
      var p = PATH_PART.exec(part);
      var key = p ? p[1].split(/[.[]/)[0] : (fieldKeys.length === 1 ? fieldKeys[0] : "");
      var message = p ? p[2] : part;
      if (META.indexOf(key) >= 0 && $("meta-" + key + "-error")) {
        $("meta-" + key + "-error").textContent = "⚠ " + message;
        $("meta-" + key).setAttribute("aria-invalid", "true");
      }
      serverErrors.general.push(p ? part : (key ? key + ": " + part : part));
    });
    refresh();
    if (placedOnStep && !selected) {
      var first = Object.keys(serverErrors.steps)[0];
      if (stepById(first)) select(first);
    }
    return error.message;
  }

  function save() {
    var errs = allErrors();
    var clientOnly = errs.total - Object.keys(serverErrors.steps).reduce(function (n, k) { return n + serverErrors.steps[k].length; }, 0);
    if (!doc.name) { $("meta-name-error").textContent = "⚠ this field is required"; $("meta-name").focus(); return; }
    if (!SEMVER.test(doc.version || "")) { $("meta-version-error").textContent = "⚠ is not a semantic version (e.g. '1.2.0')"; $("meta-version").focus(); return; }
    if (clientOnly > 0) { announce("⚠ Fix the " + clientOnly + " problem(s) shown next to the steps first."); return; }
    var body = buildDocument();
    var url = cfg.mode === "edit" ? cfg.urls.versions : cfg.urls["import"];
    var button = $("save");
    button.disabled = true;
    announce("Saving…");
    api("POST", url, body).then(function (result) {
      button.disabled = false;
      if (result.ok) {
        var slug = cfg.mode === "edit" ? cfg.runbook.slug : (result.data && result.data.slug) || body.slug;
        var version = result.data && result.data.version;
        announce("✔ Saved as draft version " + version + ". Opening it…");
        window.location.assign(cfg.urls.builder + encodeURIComponent(slug) + "/?version=" + encodeURIComponent(version));
      } else {
        var summary = showServerError(result, body.steps);
        $("save-errors").textContent = "⚠ Not saved (" + result.status + "): " + summary;
        announce("⚠ Not saved: the problems are shown next to the steps and fields they concern.");
      }
    }, function () { button.disabled = false; announce("⚠ Not saved: the server could not be reached."); });
  }

  function versionAction(suffix, body, errorBox) {
    return api("POST", cfg.urls.version_base + encodeURIComponent(cfg.version.version) + "/" + suffix, body).then(function (result) {
      if (result.ok) { announce("✔ Done. Reloading…"); window.location.reload(); return; }
      var msg = result.data && result.data.error ? result.data.error.message : "HTTP " + result.status;
      errorBox.textContent = "⚠ " + msg;
      announce("⚠ " + msg);
    });
  }

  // --- YAML import / export ------------------------------------------------------------------

  function exportYaml() {
    var text = window.jsyaml.dump(buildDocument(), { noRefs: true, lineWidth: 120, sortKeys: false });
    $("yaml-text").value = text;
    var link = $("download-yaml");
    link.href = URL.createObjectURL(new Blob([text], { type: "application/yaml" }));
    link.download = (doc.slug || (cfg.runbook && cfg.runbook.slug) || "runbook") + "-" + doc.version + ".yaml";
    link.hidden = false;
    announce("The builder's document is in the text area as YAML.");
  }

  /* Another tool's document: posted as a file to …/runbooks/import (multipart); the report is shown, then
     the new draft opens in the builder. */
  function importForeign() {
    var file = $("foreign-file").files[0];
    var box = $("foreign-error");
    if (!file) { box.textContent = "⚠ Choose a file first."; $("foreign-file").focus(); return; }
    box.textContent = "";
    var form = new FormData();
    form.append("file", file);
    if ($("foreign-format").value) form.append("format", $("foreign-format").value);
    var button = $("foreign-import");
    button.disabled = true;
    announce("Importing " + file.name + "…");
    fetch(cfg.urls["import"], {
      method: "POST", credentials: "same-origin", body: form,
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        button.disabled = false;
        if (!response.ok) {
          var msg = data && data.error ? data.error.message : "HTTP " + response.status;
          box.textContent = "⚠ Not imported: " + msg;
          announce("⚠ Not imported: " + msg);
          return;
        }
        var summary = data.provenance ? data.provenance.report.summary : null;
        var text = "✔ Draft " + data.slug + " " + data.version + (summary ? ": " + summary.converted + " converted, " +
          summary.manual + " manual, " + summary.dropped + " dropped" : "") + ". Opening it…";
        $("foreign-report").textContent = text;
        announce(text);
        window.location.assign(cfg.urls.builder + encodeURIComponent(data.slug) + "/?version=" + encodeURIComponent(data.version));
      });
    }, function () { button.disabled = false; announce("⚠ Not imported: the server could not be reached."); });
  }

  function importYaml() {
    var text = $("yaml-text").value;
    var parsed;
    try { parsed = window.jsyaml.load(text, { json: true }); } catch (e) {
      $("yaml-error").textContent = "⚠ " + e.message; return;
    }
    if (!parsed || typeof parsed !== "object" || !Array.isArray(parsed.steps)) {
      $("yaml-error").textContent = "⚠ A runbook document is a mapping with a list of steps."; return;
    }
    $("yaml-error").textContent = "";
    var keepSlug = cfg.mode === "edit" ? cfg.runbook.slug : null;
    doc = Object.assign({ parameters: {}, approvals: [], category: "failover", description: "" }, parsed);
    doc.parameters = doc.parameters || {};
    doc.approvals = doc.approvals || [];
    doc.steps = doc.steps.map(function (s) { return Object.assign({ needs: [], "with": {} }, s); });
    if (keepSlug && parsed.slug && parsed.slug !== keepSlug) {
      serverErrors.general = ["slug: this document is for runbook " + JSON.stringify(parsed.slug) + ", not " + JSON.stringify(keepSlug) + "; saving will be refused."];
    } else serverErrors = { steps: {}, general: [] };
    if (cfg.mode === "edit" && !parsed.version) doc.version = cfg.next_version;
    selected = null;
    bindMetaValues();
    renderParameters();
    renderLevels();
    renderStepForm();
    if (graph) graph.relayout();
    refresh();
    announce("Loaded " + doc.steps.length + " step(s) from the document. Save to create a draft version.");
  }

  function bindMetaValues() {
    ["name", "slug", "version", "category", "application", "parallelism", "description"].forEach(function (key) {
      if (key === "slug" && cfg.mode === "edit") return;
      $("meta-" + key).value = doc[key] === null || doc[key] === undefined ? "" : String(doc[key]);
    });
  }

  // --- Adding steps and connecting them --------------------------------------------------------

  function addStep(actionName) {
    var base = actionName.replace(/[^A-Za-z0-9_-]/g, "-");  // a step id is a slug: redis.promote -> redis-promote
    var n = 1;
    while (stepById(base + "-" + n)) n += 1;
    var id = base + "-" + n;
    var step = { id: id, title: actionName.charAt(0).toUpperCase() + actionName.slice(1) + " " + n, action: actionName,
      "with": {}, needs: selected && stepById(selected) ? [selected] : [], timeout: null, retries: 0,
      estimated_duration: null, idempotent: false, continue_on_failure: false };
    doc.steps.push(step);
    announce("Added step " + id + (step.needs.length ? ", which needs " + step.needs[0] : "") + ".");
    select(id, true);
  }

  function connect(from, to) {
    if (from === to) { announce("A step cannot need itself."); return; }
    var target = stepById(to);
    if (!target) return;
    target.needs = target.needs || [];
    if (target.needs.indexOf(from) >= 0) { announce(to + " already needs " + from + "."); return; }
    if (reachable(from, to)) { announce("⚠ Not connected: " + from + " already depends on " + to + ", so this would form a cycle."); return; }
    target.needs.push(from);
    changed(target);
    if (selected === to) renderStepForm();
    announce("Connected: " + to + " now needs " + from + ".");
  }

  function removeEdge(from, to) {
    var target = stepById(to);
    if (!target) return;
    target.needs = (target.needs || []).filter(function (n) { return n !== from; });
    changed(target);
    if (selected === to) renderStepForm();
    announce("Removed: " + to + " no longer needs " + from + ".");
    if (graph) graph.focusNode(to);
  }

  // --- Wiring -----------------------------------------------------------------------------------

  graph = window.DRPlanGraph.create($("graph"), { readOnly: readOnly, onSelect: function (id) { select(id, false); },
    onConnect: connect, onRemoveEdge: removeEdge });
  $("step-list").setAttribute("tabindex", "-1");
  bindMeta();
  renderParameters();
  renderLevels();
  document.querySelectorAll(".palette-item").forEach(function (b) {
    b.addEventListener("click", function () { addStep(b.getAttribute("data-action")); });
  });
  if ($("save")) $("save").addEventListener("click", save);
  if ($("relayout")) $("relayout").addEventListener("click", function () { graph.relayout(); announce("Graph arranged again."); });
  if ($("submit")) $("submit").addEventListener("click", function () { versionAction("submit", {}, $("save-errors")); });
  document.querySelectorAll("[data-decide]").forEach(function (b) {
    b.addEventListener("click", function () {
      var decision = b.getAttribute("data-decide");
      var comment = $("decision-comment").value;
      if (decision === "reject" && !comment.trim()) {
        $("decide-error").textContent = "⚠ A rejection needs a comment explaining why.";
        $("decision-comment").focus();
        return;
      }
      versionAction(decision, { comment: comment }, $("decide-error"));
    });
  });
  $("export-yaml").addEventListener("click", exportYaml);
  if ($("import-yaml")) $("import-yaml").addEventListener("click", importYaml);
  if ($("yaml-file")) $("yaml-file").addEventListener("change", function (event) {
    var file = event.target.files[0];
    if (!file) return;
    file.text().then(function (text) { $("yaml-text").value = text; announce("Read " + file.name + "; press “Load the document into the builder”."); });
  });
  if ($("foreign-import")) $("foreign-import").addEventListener("click", importForeign);
  refresh();
  window.DRPlanBuilder = { document: buildDocument, select: select, addStep: addStep, connect: connect };
})();
