// InsightDesk ops console: live updates by polling the JSON API (no full reloads), confirmation
// of destructive forms and a tiny SVG line chart. No dependencies, nothing loaded from elsewhere.
(function () {
  "use strict";
  const body = document.body;
  const base = body.dataset.base || "";
  const POLL_MS = 2000;

  function formatValue(el, value) {
    if (el.dataset.format === "age") return Number(value).toFixed(1) + " s";
    if (el.dataset.format === "paused") return value ? '<span class="paused">paused</span>' : "running";
    return String(value);
  }

  // The API writes UTC instants with "Z"; the pages render them as "+00:00".
  function instant(value) {
    return value ? String(value).replace(/Z$/, "+00:00") : "";
  }

  function fill(row, data) {
    row.querySelectorAll("[data-field]").forEach(function (el) {
      const key = el.dataset.field;
      if (!(key in data)) return;
      const html = formatValue(el, data[key]);
      if (el.innerHTML !== html) el.innerHTML = html;
    });
  }

  async function getJson(path) {
    const response = await fetch(base + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) { window.location.href = base + "/login"; return null; }
    if (!response.ok) return null;
    return response.json();
  }

  function every(fn) {
    let busy = false;
    async function tick() {
      if (busy || document.hidden) return;
      busy = true;
      try { await fn(); } catch (err) { /* keep polling through transient errors */ }
      busy = false;
    }
    setInterval(tick, POLL_MS);
    tick();
  }

  // ---------------------------------------------------------------- charts

  function drawChart(svg, series, unit) {
    const W = 600, H = 160, L = 42, B = 18, T = 8;
    const xs = series.flatMap(function (s) { return s.points.map(function (p) { return p[0]; }); });
    const ys = series.flatMap(function (s) { return s.points.map(function (p) { return p[1]; }); });
    const now = Date.now();
    const x0 = now - 3600 * 1000, x1 = now;
    const yMax = Math.max(1e-9, ...ys, 0) * 1.1 || 1;
    const sx = function (x) { return L + (W - L - 4) * (x - x0) / (x1 - x0); };
    const sy = function (y) { return H - B - (H - B - T) * y / yMax; };
    let out = '<line class="axis" x1="' + L + '" y1="' + (H - B) + '" x2="' + W + '" y2="' + (H - B) + '"/>';
    out += '<line class="axis" x1="' + L + '" y1="' + T + '" x2="' + L + '" y2="' + (H - B) + '"/>';
    out += '<text class="label" x="2" y="' + (T + 8) + '">' + (yMax / 1.1).toFixed(yMax < 10 ? 2 : 0) + unit + "</text>";
    out += '<text class="label" x="2" y="' + (H - B) + '">0</text>';
    out += '<text class="label" x="' + L + '" y="' + (H - 4) + '">-60 min</text>';
    out += '<text class="label" x="' + (W - 30) + '" y="' + (H - 4) + '">now</text>';
    series.forEach(function (s, i) {
      if (!s.points.length) return;
      const d = s.points.map(function (p) { return sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1); }).join(" ");
      out += '<polyline class="s' + i + '" points="' + d + '"><title>' + s.name + "</title></polyline>";
    });
    if (!xs.length) out += '<text class="label" x="' + (W / 2 - 40) + '" y="' + (H / 2) + '">no data yet</text>';
    svg.innerHTML = out;
  }

  function bySlot(history, pick, combine) {
    const slots = new Map();
    history.forEach(function (h) {
      const t = Date.parse(h.slot);
      const v = pick(h);
      if (v === null || v === undefined) return;
      slots.set(t, slots.has(t) ? combine(slots.get(t), v) : v);
    });
    return Array.from(slots.entries()).sort(function (a, b) { return a[0] - b[0]; });
  }

  // ---------------------------------------------------------------- pages

  const pages = {
    overview: function () {
      every(async function () {
        const data = await getJson("/api/overview");
        if (!data) return;
        data.queues.forEach(function (q) {
          const row = document.querySelector('#queues tr[data-queue="' + CSS.escape(q.name) + '"]');
          if (row) fill(row, q);
        });
        const perMinute = bySlot(data.history, function (h) { return (h.completed + h.failed) * 6; }, function (a, b) { return a + b; });
        drawChart(document.getElementById("chart-throughput"), [{ name: "finished/min", points: perMinute }], "");
        drawChart(document.getElementById("chart-wait"), [
          { name: "p50", points: bySlot(data.history, function (h) { return h.wait_p50; }, Math.max) },
          { name: "p95", points: bySlot(data.history, function (h) { return h.wait_p95; }, Math.max) },
        ], " s");
      });
    },
    queue: function () {
      const table = document.getElementById("queue-counts");
      const name = table.dataset.queue;
      every(async function () {
        const data = await getJson("/api/queues/" + encodeURIComponent(name));
        if (!data) return;
        fill(table, data.queue);
        const label = document.getElementById("queue-state");
        label.textContent = data.queue.paused ? "paused" : "running";
        label.className = data.queue.paused ? "paused" : "";
      });
    },
    job: function () {
      const state = document.getElementById("job-state");
      const id = state.dataset.job;
      every(async function () {
        const job = await getJson("/api/jobs/" + id);
        if (!job) return;
        state.textContent = job.state;
        state.className = "state-" + job.state;
        document.getElementById("job-attempt").textContent = String(job.retry_count + 1);
        document.getElementById("job-started").textContent = instant(job.started_on);
        document.getElementById("job-completed").textContent = instant(job.completed_on);
        document.getElementById("job-output").textContent = JSON.stringify(job.output, null, 2);
      });
    },
    failed: function () {
      const all = document.getElementById("select-all");
      if (all) all.addEventListener("change", function () {
        document.querySelectorAll("input.pick").forEach(function (box) { box.checked = all.checked; });
      });
    },
  };

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { event.preventDefault(); return; }
    if (form.dataset.confirmCount) {
      const n = form.querySelectorAll("input.pick:checked").length;
      const action = event.submitter ? event.submitter.value : "apply";
      if (n === 0) { event.preventDefault(); window.alert("Select at least one job."); return; }
      if (!window.confirm(action + " " + n + " job(s)?")) event.preventDefault();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    const page = window.consolePage;
    if (page && pages[page]) pages[page]();
  });
})();
