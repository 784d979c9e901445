/* Critical path of a runbook document: twin of runbooks.selectors.critical_path (keep both in step;
 * runbooks/tests/test_critical_path.py runs the same cases through both).
 *
 * criticalPath(doc) -> {steps: [ids…], seconds: N}. The longest chain of `needs` by summed
 * estimated_duration (no estimate = 0 s); ties go to the chain with more steps, then to the step
 * earlier in the document. Unknown needs are ignored; a cycle throws an Error naming the steps.
 */
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory();
  else root.DRPlanCriticalPath = factory();
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";
  var DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

  function estimateSeconds(value) {
    if (typeof value === "number" && Number.isInteger(value)) return Math.max(value, 0);
    if (typeof value === "string" && value) {
      var m = DURATION.exec(value.trim());
      if (m) return (+(m[1] || 0)) * 3600 + (+(m[2] || 0)) * 60 + (+(m[3] || 0));
    }
    return 0;
  }

  function better(score, position, other, otherPosition) {
    if (score[0] !== other[0]) return score[0] > other[0];
    if (score[1] !== other[1]) return score[1] > other[1];
    return position < otherPosition;
  }

  function criticalPath(doc) {
    var steps = [], index = {};
    ((doc && doc.steps) || []).forEach(function (step) {
      if (step && typeof step.id === "string" && !(step.id in index)) {
        index[step.id] = steps.length;
        steps.push(step);
      }
    });
    var needs = {}, dependents = {}, waiting = {};
    steps.forEach(function (step) { dependents[step.id] = []; });
    steps.forEach(function (step) {
      var seen = {};
      needs[step.id] = (step.needs || []).filter(function (n) {
        var ok = typeof n === "string" && n in index && n !== step.id && !seen[n];
        seen[n] = true;
        return ok;
      });
      waiting[step.id] = needs[step.id].length;
      needs[step.id].forEach(function (n) { dependents[n].push(step.id); });
    });
    var byIndex = function (a, b) { return index[a] - index[b]; };
    var ready = steps.map(function (s) { return s.id; }).filter(function (id) { return waiting[id] === 0; });
    var order = [];
    while (ready.length) {
      var current = ready.shift();
      order.push(current);
      dependents[current].forEach(function (child) {
        waiting[child] -= 1;
        if (waiting[child] === 0) { ready.push(child); ready.sort(byIndex); }
      });
    }
    if (order.length !== steps.length) {
      var stuck = steps.map(function (s) { return s.id; }).filter(function (id) { return waiting[id] > 0; });
      var err = new Error("the steps' needs form a cycle through " + stuck.join(", "));
      err.steps = stuck;
      throw err;
    }
    var finish = {}, previous = {};
    order.forEach(function (id) {
      var best = null;
      needs[id].forEach(function (n) {
        if (best === null || better(finish[n], index[n], finish[best], index[best])) best = n;
      });
      var base = best === null ? [0, 0] : finish[best];
      finish[id] = [base[0] + estimateSeconds(steps[index[id]].estimated_duration), base[1] + 1];
      previous[id] = best;
    });
    var end = null;
    steps.forEach(function (s) {
      if (end === null || better(finish[s.id], index[s.id], finish[end], index[end])) end = s.id;
    });
    var path = [];
    while (end !== null) { path.push(end); end = previous[end]; }
    path.reverse();
    return { steps: path, seconds: path.length ? finish[path[path.length - 1]][0] : 0 };
  }

  /* 3600 → "1h", 5400 → "1h 30m", 90 → "1m 30s", 0 → "0s" (same as core.admin_mixins.human_duration). */
  function humanDuration(seconds) {
    // Twin of core.formatting.duration: "45 s", "15 min", "4 min 05 s", "1 h 02 min", "24 h", "3 d 4 h".
    var total = Math.round(seconds || 0);
    if (total < 0) return "−" + humanDuration(-total);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (total < 60) return total + " s";
    var m = Math.floor(total / 60), s = total % 60;
    if (total < 3600) return s === 0 ? m + " min" : m + " min " + pad(s) + " s";
    var h = Math.floor(m / 60);
    m = m % 60;
    if (h < 72) return m === 0 ? h + " h" : h + " h " + pad(m) + " min";
    var d = Math.floor(h / 24);
    h = h % 24;
    return h === 0 ? d + " d" : d + " d " + h + " h";
  }


  return { criticalPath: criticalPath, estimateSeconds: estimateSeconds, humanDuration: humanDuration };
});
