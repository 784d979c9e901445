/* DRPlan execution console: follows one execution over its websocket and acts through the REST API.
 *
 * The page is rendered with the state up to `last_seq`; this script applies every event after it, in
 * order and once (an event whose seq is not the next one is ignored if old, or makes it reconnect if it
 * skips ahead), reconnects with its last seq when the socket drops, and refreshes the clock, the forecast
 * and the allowed actions from the console's state URL after each status change (and every few seconds
 * while the execution runs). No framework; plain DOM.
 */
(function () {
  "use strict";

  var cfgEl = document.getElementById("console-config");
  if (!cfgEl) return;
  var cfg = JSON.parse(cfgEl.textContent);
  var state = cfg.state;
  var lastSeq = cfg.last_seq;
  var complete = false; // until the server's summary says every event was sent (even for a finished run)
  var socket = null;
  var retryDelay = 500;
  var refreshTimer = null;
  var skewMs = Date.parse(state.clock.now) - Date.now(); // server clock minus ours

  function $(id) { return document.getElementById(id); }
  function byKey(selector, key) {
    return document.querySelectorAll(selector + '[data-step-key="' + CSS.escape(key) + '"]');
  }

  function durationText(seconds) {
    // Twin of core.formatting.duration(seconds, precise=True): "12 s", "4 min 05 s", "1 h 02 min 03 s", "3 d 4 h".
    if (seconds === null || seconds === undefined) return "—";
    var total = Math.round(seconds);
    if (total < 0) return "−" + durationText(-total);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (total < 60) return total + " s";
    var m = Math.floor(total / 60), s = total % 60;
    if (total < 3600) return s === 0 ? m + " min" : m + " min " + pad(s) + " s";
    var h = Math.floor(m / 60);
    m = m % 60;
    if (h < 72) return h + " h " + pad(m) + " min " + pad(s) + " s";
    var d = Math.floor(h / 24);
    h = h % 24;
    return h === 0 ? d + " d" : d + " d " + h + " h";
  }
  function money(perHour, seconds) {
    // core.formatting.money: the configured currency around an amount grouped by thousands.
    if (!perHour) return null;
    return moneyText(Math.max(0, seconds) * parseFloat(perHour) / 3600);
  }
  function moneyText(amount) {
    var text = amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    var currency = cfg.currency || { prefix: "", suffix: "" };
    return currency.prefix + text + currency.suffix;
  }
  function costAt(c, seconds) {
    // plans/costs.py: the cumulative cost is linear between the points where the rate changes (escalation
    // breakpoints, wall-clock hours); past the last point it grows at the current rate.
    var points = c.cost_points || [];
    if (!points.length) return money(c.cost_per_hour, seconds);
    var t = Math.max(0, seconds), amount = parseFloat(points[0][1]);
    for (var i = 1; i < points.length; i++) {
      var a = points[i - 1], b = points[i];
      if (t <= b[0]) {
        var span = b[0] - a[0];
        amount = parseFloat(a[1]) + (span > 0 ? (parseFloat(b[1]) - parseFloat(a[1])) * (t - a[0]) / span : 0);
        return moneyText(amount);
      }
      amount = parseFloat(b[1]);
    }
    var last = points[points.length - 1];
    return moneyText(amount + (t - last[0]) * parseFloat(c.cost_per_hour) / 3600);
  }
  function timeText(date) {
    // core.formatting.local_time(…, seconds=True, date=False): the server's time zone, with its name.
    try {
      var parts = new Intl.DateTimeFormat("en-GB", {
        timeZone: cfg.time_zone || "UTC", hour: "2-digit", minute: "2-digit", second: "2-digit",
        hour12: false, timeZoneName: "short"
      }).formatToParts(date);
      var get = function (type) {
        var part = parts.find(function (p) { return p.type === type; });
        return part ? part.value : "";
      };
      return get("hour") + ":" + get("minute") + ":" + get("second") + " " + get("timeZoneName");
    } catch (e) {
      return date.toISOString().slice(11, 19) + " UTC";
    }
  }
  function announce(text) {
    var region = $("live-announcer");
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function setConnection(text) { $("connection-status").textContent = text; }

  function replaceStatusClass(el, status) {
    el.className = el.className.replace(/\bstatus-[a-z_]+/g, "").trim() + " status-" + status;
  }

  // --- statuses ---------------------------------------------------------------------

  function setExecutionStatus(status) {
    var badge = $("execution-status");
    if (badge.dataset.status === status) return;
    badge.dataset.status = status;
    replaceStatusClass(badge, status);
    badge.querySelector(".icon").textContent = cfg.execution_icons[status] || "•";
    badge.querySelector(".label").textContent = cfg.execution_labels[status] || status;
    announce("Execution " + (cfg.execution_labels[status] || status));
  }

  function setStepStatus(key, status) {
    var label = cfg.step_labels[status] || status;
    var icon = cfg.step_icons[status] || "•";
    var changed = false;
    byKey(".dag-node", key).forEach(function (node) {
      if (node.getAttribute("class").indexOf("status-" + status) === -1) changed = true;
      node.setAttribute("class", node.getAttribute("class").replace(/\bstatus-[a-z_]+/g, "").trim() + " status-" + status);
      node.querySelector(".icon").textContent = icon;
      node.querySelector(".label").textContent = label;
      var title = node.querySelector("title").textContent.replace(/ \(.*\)$/, "");
      node.setAttribute("aria-label", title + ": " + label);
    });
    byKey(".step-pane", key).forEach(function (pane) {
      replaceStatusClass(pane, status);
      pane.querySelector(".step-status .icon").textContent = icon;
      pane.querySelector(".step-status .label").textContent = label;
    });
    byKey(".gantt-row", key).forEach(function (row) {
      replaceStatusClass(row, status);
      row.querySelector(".icon").textContent = icon;
      row.querySelector(".label").textContent = label;
    });
    if (changed) announce("Step " + key + ": " + label);
  }

  // --- clock, forecast, timeline, actions (from the state URL) ----------------------

  function applyState(s) {
    state = s;
    setExecutionStatus(s.execution.status);
    var err = $("execution-error");
    err.textContent = s.execution.error || "";
    err.hidden = !s.execution.error;
    s.steps.forEach(function (step) {
      setStepStatus(step.key, step.status);
      byKey(".step-pane", step.key).forEach(function (pane) {
        var e = pane.querySelector(".step-error");
        e.textContent = step.error || "";
        e.hidden = !step.error;
      });
      byKey(".dag-node", step.key).forEach(function (node) {
        node.classList.toggle("critical", step.critical);
      });
      byKey(".gantt-row", step.key).forEach(function (row) {
        row.classList.toggle("projected", step.projected);
        row.classList.toggle("critical", step.critical);
        var bar = row.querySelector(".gantt-bar");
        if (step.left_pct === null || step.width_pct === null) {
          bar.hidden = true;
        } else {
          bar.hidden = false;
          bar.style.left = step.left_pct + "%";
          bar.style.width = step.width_pct + "%";
        }
        row.querySelector(".timing").textContent = step.duration_text ? " · " + step.duration_text : (step.projected ? " · forecast" : "");
      });
      renderStepActions(step);
    });
    var target = $("gantt-target");
    if (s.target_pct === null) { target.hidden = true; } else { target.hidden = false; target.style.left = s.target_pct + "%"; }
    renderExecutionActions(s.actions);
    renderClock();
  }

  function renderClock() {
    var c = state.clock;
    var elapsed = c.elapsed_seconds;
    var projectedTotal = c.projected_total_seconds;
    if (!c.complete) {
      var now = Date.now() + skewMs;
      elapsed = (now - Date.parse(c.start)) / 1000;
      // A step running past its expected duration pushes the finish out with the clock.
      projectedTotal = Math.max(projectedTotal, elapsed);
      var pct = Math.min(100, 100 * elapsed / Math.max(state.scale_seconds, elapsed, 1));
      $("gantt-now").style.left = pct + "%";
    }
    $("rto-elapsed").textContent = durationText(elapsed);
    $("rto-projected-total").textContent = durationText(projectedTotal);
    var finish = $("rto-projected-finish");
    var finishAt = new Date(Date.parse(c.start) + projectedTotal * 1000);
    finish.setAttribute("datetime", finishAt.toISOString());
    finish.textContent = timeText(finishAt);

    var target = c.target_seconds;
    var rtoState = c.state;
    if (target !== null && !c.complete) {
      rtoState = elapsed > target ? "breached" : projectedTotal > target ? "at_risk" : "on_track";
    }
    var labels = {
      no_target: "No RTO target (no plan)", on_track: "On track", at_risk: "At risk: projected to breach the RTO",
      breached: "RTO breached", met: "RTO met", missed: "RTO missed"
    };
    var badge = $("rto-state");
    badge.className = "badge rto-" + rtoState;
    badge.textContent = labels[rtoState];
    var panel = $("rto-panel");
    if (panel.dataset.state !== rtoState) {
      if (rtoState === "at_risk" || rtoState === "breached") announce(labels[rtoState]);
      panel.dataset.state = rtoState;
    }
    var warning = $("rto-warning");
    var text = "";
    if (rtoState === "at_risk") text = "Projected to breach the RTO by " + durationText(projectedTotal - target);
    else if (rtoState === "breached") text = "RTO breached: still running past the target";
    else if (rtoState === "missed") text = "RTO missed by " + durationText(projectedTotal - target);
    $("rto-warning-text").textContent = text;
    warning.hidden = !text;

    var measured = c.measured_rto_seconds;
    $("rto-measured-row").hidden = measured === null || measured === undefined;
    $("rto-measured").textContent = c.measured_rto_text || "";

    var source = $("projection-source");
    source.dataset.source = c.projection_source;
    source.textContent = c.projection_source_text || "";
    source.hidden = !c.projection_source_text;

    var path = $("critical-path");
    path.hidden = !c.critical_path.length || c.complete;
    $("critical-path-steps").textContent = c.critical_path.join(" → ");

    var soFar = $("cost-so-far");
    if (soFar && c.cost_per_hour) {
      soFar.textContent = costAt(c, elapsed);
      $("cost-projected").textContent = costAt(c, projectedTotal);
    }
  }

  function makeButton(action, scope, stepKey, stepTitle) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "button" + ({ approve: " primary", resume: " primary", confirm: " primary", reject: " danger", cancel: " danger" }[action.name] || "");
    b.dataset.scope = scope;
    b.dataset.action = action.name;
    b.dataset.needsComment = action.comment ? "1" : "0";
    b.textContent = action.label;
    if (stepKey) {
      b.dataset.step = stepKey;
      var hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = " (" + stepTitle + ")";
      b.appendChild(hidden);
    }
    return b;
  }

  function sameActions(container, actions) {
    var now = Array.prototype.map.call(container.querySelectorAll("button"), function (b) { return b.dataset.action; });
    return now.join(",") === actions.map(function (a) { return a.name; }).join(",");
  }

  function renderExecutionActions(actions) {
    var box = $("execution-actions");
    if (!sameActions(box, actions)) {
      box.textContent = "";
      actions.forEach(function (a) { box.appendChild(makeButton(a, "execution")); });
    }
    $("no-actions").hidden = actions.length > 0;
  }

  function renderStepActions(step) {
    byKey(".step-actions", step.key).forEach(function (box) {
      if (sameActions(box, step.actions)) return;
      box.textContent = "";
      step.actions.forEach(function (a) { box.appendChild(makeButton(a, "step", step.key, step.title)); });
    });
  }

  function refreshSoon(delay) {
    if (refreshTimer) return;
    refreshTimer = window.setTimeout(function () {
      refreshTimer = null;
      fetch(cfg.state_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) { if (s) applyState(s); })
        .catch(function () { /* the next event or tick tries again */ });
    }, delay === undefined ? 200 : delay);
  }

  // --- events ---------------------------------------------------------------------------

  function paneFor(event) {
    var key = event.data && event.data.step;
    if (key) {
      var panes = byKey(".step-pane", key);
      if (panes.length) return panes[0];
    }
    var byId = document.querySelector('.step-pane[data-step-id="' + (event.step_run || 0) + '"]');
    return byId || document.querySelector('.step-pane[data-step-id="0"]');
  }

  function appendLog(event) {
    var log = paneFor(event).querySelector(".log");
    var placeholder = log.querySelector(".no-output");
    if (placeholder) placeholder.remove();
    var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    var line = document.createElement("span");
    line.className = "line";
    line.dataset.seq = event.seq;
    line.textContent = event.message + "\n";
    log.appendChild(line);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function appendActivity(event) {
    var li = document.createElement("li");
    li.dataset.seq = event.seq;
    var time = document.createElement("time");
    time.setAttribute("datetime", event.created_at);
    time.textContent = event.created_at ? timeText(new Date(event.created_at)) : "";
    li.appendChild(time);
    li.appendChild(document.createTextNode(" " + event.message));
    var list = $("activity");
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function applyEvent(event) {
    if (event.seq <= lastSeq) return true; // already applied (rendered with the page or sent twice)
    if (event.seq !== lastSeq + 1) return false; // a gap: resume from what we have
    lastSeq = event.seq;
    if (event.kind === "log") {
      appendLog(event);
      return true;
    }
    appendActivity(event);
    if (event.kind === "step_status" && event.data && event.data.step && event.data.status) {
      setStepStatus(event.data.step, event.data.status);
    } else if (event.kind === "status" && event.data && event.data.status) {
      setExecutionStatus(event.data.status);
    }
    refreshSoon();
    return true;
  }

  function connect() {
    if (complete) return;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + window.location.host + cfg.ws_path + "?after=" + lastSeq;
    setConnection("connecting…");
    try {
      socket = new WebSocket(url);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    socket.onopen = function () { retryDelay = 500; setConnection("live"); };
    socket.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (data.type === "event") {
        if (!applyEvent(data.event)) socket.close(); // reconnects with ?after=lastSeq
      } else if (data.type === "summary") {
        if (data.last_seq === undefined || data.last_seq <= lastSeq) {
          complete = true;
          setConnection("complete: every event received");
          refreshSoon(0);
          socket.close();
        }
      } else if (data.type === "error") {
        setConnection("refused: " + (data.message || data.code));
      }
    };
    socket.onclose = function (closed) {
      socket = null;
      // 4400/4401/4403/4404: bad request, signed out, forbidden, unknown execution; retrying will not help.
      if (closed.code >= 4400 && closed.code < 4500) {
        complete = true;
        return;
      }
      if (!complete) scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    setConnection("disconnected; reconnecting…");
    window.setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  }

  // --- actions ----------------------------------------------------------------------------

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function showResult(text, isError) {
    var out = $("action-result");
    out.textContent = text;
    out.className = isError ? "error" : "";
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-action]");
    if (!button) return;
    var comment = $("action-comment").value.trim();
    var label = button.firstChild.textContent;
    if (button.dataset.needsComment === "1" && !comment) {
      showResult(label + ": write a comment first (why).", true);
      $("action-comment").focus();
      return;
    }
    var path = button.dataset.scope === "step"
      ? "steps/" + encodeURIComponent(button.dataset.step) + "/" + cfg.paths.step[button.dataset.action] + "/"
      : cfg.paths.execution[button.dataset.action] + "/";
    button.disabled = true;
    fetch(cfg.api_base + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ comment: comment })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
    }).then(function (res) {
      if (res.ok) {
        showResult(label + ": done.", false);
        $("action-comment").value = "";
      } else {
        var msg = res.body && res.body.error ? res.body.error.message : "HTTP " + res.status;
        showResult(label + " refused: " + msg, true);
      }
      refreshSoon(0);
    }).catch(function () {
      showResult(label + ": the server could not be reached.", true);
    }).then(function () { button.disabled = false; });
  });

  // --- start --------------------------------------------------------------------------------

  renderClock();
  window.setInterval(function () { if (!state.clock.complete) renderClock(); }, 1000);
  window.setInterval(function () { if (state.execution.active) refreshSoon(0); }, 5000);
  connect();
})();
