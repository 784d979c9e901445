/* A small SVG editor for a runbook's step graph (no dependencies).
 *
 * Nodes are steps; an arrow A → B means "B needs A". Pointer: drag a step to move it; drag from a
 * step's ● handle onto another step to add a dependency; click an arrow, then Delete, to remove it.
 * Keyboard: Tab to a step, Enter/Space edits it, arrow keys move it (Shift: bigger moves); Tab to an
 * arrow and press Delete to remove it. Dependencies can also be set in the step form ("Needs").
 * Status is shown with text and shapes (★ critical, ⚠ errors), never by colour alone.
 */
(function (root) {
  "use strict";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var W = 190, H = 62, GAP_X = 70, GAP_Y = 26, PAD = 20;

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG_NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function truncate(text, max) {
    text = String(text || "");
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  function create(svg, options) {
    var opts = options || {};
    var positions = {};
    var model = { steps: [], selected: null, critical: [] };
    var selectedEdge = null;
    var drag = null;

    var defs = el("defs", {}, svg);
    var marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "10",
      markerHeight: "10", markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", "class": "arrow-head" }, marker);
    var edgeLayer = el("g", { "class": "edges" }, svg);
    var nodeLayer = el("g", { "class": "nodes" }, svg);
    var tempLine = el("path", { "class": "edge-draft", d: "", "aria-hidden": "true" }, svg);

    function toSvgPoint(event) {
      var ctm = svg.getScreenCTM();
      var pt = svg.createSVGPoint();
      pt.x = event.clientX; pt.y = event.clientY;
      return ctm ? pt.matrixTransform(ctm.inverse()) : { x: event.clientX, y: event.clientY };
    }

    function layout() {
      var byId = {}, depth = {};
      model.steps.forEach(function (s) { byId[s.id] = s; });
      function d(id, seen) {
        if (depth[id] !== undefined) return depth[id];
        if (seen[id]) return 0;
        seen[id] = true;
        var step = byId[id];
        var value = 0;
        (step ? step.needs : []).forEach(function (n) { if (byId[n]) value = Math.max(value, d(n, seen) + 1); });
        depth[id] = value;
        return value;
      }
      var rows = {};
      model.steps.forEach(function (s) {
        if (positions[s.id]) return;
        var layer = d(s.id, {});
        var row = rows[layer] || 0;
        // Skip rows already taken by positioned steps in this column.
        var x = PAD + layer * (W + GAP_X);
        var taken = function (y) {
          return Object.keys(positions).some(function (k) {
            return Math.abs(positions[k].x - x) < W && Math.abs(positions[k].y - y) < H;
          });
        };
        var y = PAD + row * (H + GAP_Y);
        while (taken(y)) { row += 1; y = PAD + row * (H + GAP_Y); }
        rows[layer] = row + 1;
        positions[s.id] = { x: x, y: y };
      });
    }

    function resize() {
      var maxX = 400, maxY = 160;
      model.steps.forEach(function (s) {
        var p = positions[s.id];
        maxX = Math.max(maxX, p.x + W + PAD);
        maxY = Math.max(maxY, p.y + H + PAD);
      });
      svg.setAttribute("viewBox", "0 0 " + maxX + " " + maxY);
      svg.setAttribute("width", maxX);
      svg.setAttribute("height", maxY);
    }

    function edgePath(from, to) {
      var a = positions[from], b = positions[to];
      var x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      var dx = Math.max(40, Math.abs(x2 - x1) / 2);
      return "M " + x1 + " " + y1 + " C " + (x1 + dx) + " " + y1 + ", " + (x2 - dx) + " " + y2 + ", " + x2 + " " + y2;
    }

    function isCriticalEdge(from, to) {
      var i = model.critical.indexOf(from);
      return i >= 0 && model.critical[i + 1] === to;
    }

    function titleOf(id) {
      var s = model.steps.find(function (x) { return x.id === id; });
      return s ? (s.title || s.id) : id;
    }

    function renderEdges() {
      edgeLayer.textContent = "";
      model.steps.forEach(function (step) {
        step.needs.forEach(function (need) {
          if (!positions[need]) return;
          var critical = isCriticalEdge(need, step.id);
          var selected = selectedEdge && selectedEdge[0] === need && selectedEdge[1] === step.id;
          var label = "Dependency: " + titleOf(step.id) + " needs " + titleOf(need) +
            (critical ? " (on the critical path)" : "") + (opts.readOnly ? "" : ". Press Delete to remove it.");
          var g = el("g", { "class": "edge" + (critical ? " critical" : "") + (selected ? " selected" : ""),
            "data-from": need, "data-to": step.id, "aria-label": label }, edgeLayer);
          if (!opts.readOnly) { g.setAttribute("tabindex", "0"); g.setAttribute("role", "button"); }
          el("title", {}, g).textContent = label;
          var d = edgePath(need, step.id);
          el("path", { d: d, "class": "edge-hit" }, g);
          el("path", { d: d, "class": "edge-line", "marker-end": "url(#arrow)" }, g);
        });
      });
    }

    function renderNodes() {
      nodeLayer.textContent = "";
      model.steps.forEach(function (step) {
        var p = positions[step.id];
        var critical = model.critical.indexOf(step.id) >= 0;
        var selected = model.selected === step.id;
        var flags = [];
        if (critical) flags.push("on the critical path");
        if (step.errors) flags.push(step.errors + (step.errors === 1 ? " error" : " errors"));
        var label = "Step " + step.id + ": " + (step.title || step.id) + ", action " + step.action +
          (flags.length ? ", " + flags.join(", ") : "") + (selected ? ", selected" : "") + ". Press Enter to edit.";
        var g = el("g", { "class": "node" + (critical ? " critical" : "") + (selected ? " selected" : "") +
          (step.errors ? " has-errors" : ""), transform: "translate(" + p.x + "," + p.y + ")", tabindex: "0",
          role: "button", "data-step": step.id, "aria-label": label }, nodeLayer);
        el("title", {}, g).textContent = label;
        el("rect", { width: W, height: H, rx: 6, "class": "node-box" }, g);
        el("text", { x: 10, y: 20, "class": "node-title" }, g).textContent = truncate(step.title || step.id, 24);
        el("text", { x: 10, y: 38, "class": "node-meta" }, g).textContent =
          truncate(step.action + " · " + step.id, 28);
        var badge = [];
        if (critical) badge.push("★ critical");
        if (step.errors) badge.push("⚠ " + step.errors);
        if (step.duration) badge.push("est. " + step.duration);
        el("text", { x: 10, y: 54, "class": "node-badge" }, g).textContent = badge.join("  ");
        if (!opts.readOnly) {
          var port = el("circle", { cx: W, cy: H / 2, r: 7, "class": "port", "data-port": step.id }, g);
          el("title", {}, port).textContent = "Drag onto another step to make it need " + step.id;
        }
      });
    }

    function render(next) {
      if (next) model = next;
      model.critical = model.critical || [];
      Object.keys(positions).forEach(function (id) {
        if (!model.steps.some(function (s) { return s.id === id; })) delete positions[id];
      });
      layout();
      resize();
      renderEdges();
      renderNodes();
    }

    function focusNode(id) {
      var node = nodeLayer.querySelector('[data-step="' + CSS.escape(id) + '"]');
      if (node) node.focus();
    }

    svg.addEventListener("pointerdown", function (event) {
      var port = event.target.closest("[data-port]");
      var node = event.target.closest("[data-step]");
      var edge = event.target.closest(".edge");
      var pt = toSvgPoint(event);
      if (port && !opts.readOnly) {
        drag = { kind: "connect", from: port.getAttribute("data-port") };
      } else if (node) {
        var id = node.getAttribute("data-step");
        drag = { kind: "move", id: id, dx: pt.x - positions[id].x, dy: pt.y - positions[id].y, x: pt.x, y: pt.y,
          moved: false };
      } else if (edge) {
        selectedEdge = [edge.getAttribute("data-from"), edge.getAttribute("data-to")];
        renderEdges();
        var again = edgeLayer.querySelector(".edge.selected");
        if (again && !opts.readOnly) again.focus();
        return;
      } else {
        return;
      }
      svg.setPointerCapture(event.pointerId);
      event.preventDefault();
    });

    svg.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var pt = toSvgPoint(event);
      if (drag.kind === "connect") {
        var a = positions[drag.from];
        tempLine.setAttribute("d", "M " + (a.x + W) + " " + (a.y + H / 2) + " L " + pt.x + " " + pt.y);
      } else {
        if (Math.abs(pt.x - drag.x) + Math.abs(pt.y - drag.y) > 3) drag.moved = true;
        if (drag.moved && !opts.readOnly) {
          positions[drag.id] = { x: Math.max(0, pt.x - drag.dx), y: Math.max(0, pt.y - drag.dy) };
          var g = nodeLayer.querySelector('[data-step="' + CSS.escape(drag.id) + '"]');
          if (g) g.setAttribute("transform", "translate(" + positions[drag.id].x + "," + positions[drag.id].y + ")");
          renderEdges();
        }
      }
    });

    svg.addEventListener("pointerup", function (event) {
      if (!drag) return;
      var current = drag;
      drag = null;
      tempLine.setAttribute("d", "");
      if (svg.hasPointerCapture(event.pointerId)) svg.releasePointerCapture(event.pointerId);
      if (current.kind === "connect") {
        var target = document.elementFromPoint(event.clientX, event.clientY);
        var node = target && target.closest && target.closest("[data-step]");
        if (node && opts.onConnect) opts.onConnect(current.from, node.getAttribute("data-step"));
      } else if (current.moved) {
        resize();
      } else if (opts.onSelect) {
        opts.onSelect(current.id);
      }
    });

    svg.addEventListener("keydown", function (event) {
      var node = event.target.closest("[data-step]");
      var edge = event.target.closest(".edge");
      if (node) {
        var id = node.getAttribute("data-step");
        var step = event.shiftKey ? 50 : 10;
        var moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          if (opts.onSelect) opts.onSelect(id);
        } else if (moves[event.key] && !opts.readOnly) {
          event.preventDefault();
          var p = positions[id];
          positions[id] = { x: Math.max(0, p.x + moves[event.key][0]), y: Math.max(0, p.y + moves[event.key][1]) };
          render();
          focusNode(id);
        }
      } else if (edge && !opts.readOnly && (event.key === "Delete" || event.key === "Backspace")) {
        event.preventDefault();
        selectedEdge = null;
        if (opts.onRemoveEdge) opts.onRemoveEdge(edge.getAttribute("data-from"), edge.getAttribute("data-to"));
      }
    });

    return {
      render: render,
      focusNode: focusNode,
      rename: function (oldId, newId) {
        if (positions[oldId]) { positions[newId] = positions[oldId]; delete positions[oldId]; }
      },
      relayout: function () { positions = {}; render(); },
    };
  }

  root.DRPlanGraph = { create: create };
})(typeof self !== "undefined" ? self : this);
