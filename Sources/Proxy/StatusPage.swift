/// The live status page (GET /status): one self-contained HTML document, its CSS and script
/// inline (no CDN, no font, nothing fetched but /status.json), so it works on a host with no way
/// out and shows nothing an operator's browser had to trust from elsewhere.
///
/// The script polls `status.json` every second and keeps the figures, not the page, up to date:
/// rates and utilization from the difference of two polls, p50/p90/p99 from the difference of the
/// cumulative buckets over the last five polls (interpolated as `histogram_quantile` does), and
/// charts of the last 300 polls drawn as inline SVG. Elements that carry a number have an id or
/// data attributes and the raw value in `data-value`; `body[data-ready]` is set once the charts
/// hold two points of live data, `body[data-error]` while a poll fails or the script threw.
enum StatusPage {
    static let html: [UInt8] = Array(source.utf8)

    private static let source = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Gatehouse status</title>
    <style>
    :root { color-scheme: light dark; --fg: #1d232a; --muted: #66707a; --bg: #f4f5f7; --card: #fff; --line: #e1e4e8; --ok: #2e8540; --bad: #c0392b; }
    @media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --muted: #9aa3ad; --bg: #15181c; --card: #1e2227; --line: #2d333b; } }
    body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
    header { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: baseline; padding: 12px 20px; border-bottom: 1px solid var(--line); }
    header h1 { font-size: 18px; margin: 0; }
    main { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 16px; padding: 16px 20px; }
    section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; min-width: 0; }
    section.wide { grid-column: 1 / -1; }
    h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 8px; font-weight: 600; }
    .big { font-size: 26px; font-variant-numeric: tabular-nums; margin-bottom: 6px; }
    .big small { font-size: 13px; color: var(--muted); }
    .stats { display: flex; flex-wrap: wrap; gap: 0 1.2em; }
    table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
    th, td { text-align: right; padding: 3px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
    th { color: var(--muted); font-weight: 600; }
    th:first-child, td:first-child, .left { text-align: left; }
    svg.chart { width: 100%; height: 110px; display: block; margin-top: 10px; border-left: 1px solid var(--line); border-bottom: 1px solid var(--line); }
    .legend { font-size: 12px; color: var(--muted); }
    .legend span { margin-right: 1em; white-space: nowrap; }
    .legend i { display: inline-block; width: 10px; height: 3px; vertical-align: middle; margin-right: 4px; }
    .muted { color: var(--muted); }
    .up { color: var(--ok); }
    .down { color: var(--bad); font-weight: 600; }
    #error { color: var(--bad); font-weight: 600; }
    </style>
    </head>
    <body>
    <header>
      <h1>Gatehouse</h1>
      <span>workers <b id="workers-count" data-value="">–</b></span>
      <span class="muted">updated <span id="updated">–</span></span>
      <span id="error" role="alert"></span>
    </header>
    <main>
    <section>
      <h2>Client connections</h2>
      <div class="big"><span id="conn-open" data-value="">–</span> <small>open</small></div>
      <table id="conn-states"><tbody></tbody></table>
      <svg class="chart" id="chart-connections" data-points="0"></svg>
      <div class="legend" data-for="chart-connections"></div>
    </section>
    <section>
      <h2>Requests</h2>
      <div class="big"><span id="rps-total" data-value="">–</span> <small>req/s</small></div>
      <table id="requests">
        <thead><tr><th>status</th><th>req/s</th><th>total</th></tr></thead>
        <tbody></tbody>
        <tfoot><tr><td>all</td><td></td><td id="req-total" data-value="">–</td></tr></tfoot>
      </table>
      <svg class="chart" id="chart-requests" data-points="0"></svg>
      <div class="legend" data-for="chart-requests"></div>
    </section>
    <section>
      <h2>Latency <span class="muted">(last <span id="latency-window" data-value="">–</span> s: <span id="latency-count" data-value="">–</span> requests)</span></h2>
      <div class="big stats">
        <span><small>p50</small> <span id="p50" data-value="">–</span></span>
        <span><small>p90</small> <span id="p90" data-value="">–</span></span>
        <span><small>p99</small> <span id="p99" data-value="">–</span></span>
      </div>
      <svg class="chart" id="chart-latency" data-points="0"></svg>
      <div class="legend" data-for="chart-latency"></div>
    </section>
    <section>
      <h2>Workers</h2>
      <table id="workers">
        <thead><tr><th>worker</th><th>loop busy</th><th>RSS</th><th>connections</th></tr></thead>
        <tbody></tbody>
      </table>
      <svg class="chart" id="chart-utilization" data-points="0"></svg>
      <div class="legend" data-for="chart-utilization"></div>
    </section>
    <section class="wide">
      <h2>Upstreams</h2>
      <table id="servers">
        <thead><tr><th>backend</th><th class="left">server</th><th>up</th><th>active</th><th>idle</th><th>queue</th><th>requests</th><th>req/s</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
    </main>
    <script>
    "use strict";
    const HISTORY = 300;  // points per chart series: five minutes at a poll a second
    const WINDOW = 5;     // polls the latency percentiles span
    const PALETTE = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16"];
    const snapshots = []; // the last WINDOW + 1 documents
    const charts = {};    // chart id -> series name -> [[time, value or null]]
    const formats = { "chart-connections": count, "chart-requests": perSecond, "chart-latency": seconds, "chart-utilization": percent };
    let polls = 0;

    const $ = id => document.getElementById(id);
    const esc = s => String(s).replace(/[&<>"']/g, c => "&#" + c.charCodeAt(0) + ";");
    function count(v) { return Math.round(v).toLocaleString("en"); }
    function perSecond(v) { return v >= 100 ? v.toFixed(0) : v.toFixed(1); }
    function percent(v) { return (v * 100).toFixed(1) + "%"; }
    function seconds(v) { return v < 1 ? (v * 1000).toFixed(v < 0.01 ? 2 : 1) + " ms" : v.toFixed(2) + " s"; }
    function bytes(v) {
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
      return v.toFixed(i ? 1 : 0) + " " + units[i];
    }

    // The raw value in data-value, the formatted one shown; a missing value shows as a dash.
    function cell(value, format) {
      const raw = value == null ? "" : String(value);
      return ` data-value="${esc(raw)}">${value == null ? "–" : esc(format(value))}`;
    }
    function show(el, value, format) {
      el.dataset.value = value == null ? "" : String(value);
      el.textContent = value == null ? "–" : format(value);
    }

    // Per-second rate of a counter between two polls; a counter that went down (a restart) counts from zero.
    function rate(now, before, dt) {
      if (!(dt > 0) || now == null || before == null) return null;
      return (now >= before ? now - before : now) / dt;
    }

    // histogram_quantile: linear interpolation inside the bucket the rank falls in, from 0 in the
    // first bucket; a rank above the last finite bound reads as that bound.
    function quantile(q, le, cumulative, total) {
      if (!(total > 0)) return null;
      const rank = q * total;
      let lower = 0, below = 0;
      for (let i = 0; i < le.length; i++) {
        if (cumulative[i] >= rank) return lower + (le[i] - lower) * (rank - below) / Math.max(cumulative[i] - below, 1);
        lower = le[i];
        below = cumulative[i];
      }
      return lower;
    }

    function record(chart, name, t, v) {
      const series = charts[chart] || (charts[chart] = {});
      const points = series[name] || (series[name] = []);
      points.push([t, v]);
      if (points.length > HISTORY) points.shift();
    }

    // One path per series over the time the points span, scaled to the largest value; a null
    // value is a gap. data-points: the most drawn points of any series.
    function draw(id) {
      const svg = $(id), series = charts[id] || {}, W = 600, H = 100;
      const names = Object.keys(series);
      const all = names.flatMap(n => series[n]).filter(p => p[1] != null);
      const t0 = Math.min(...all.map(p => p[0])), t1 = Math.max(...all.map(p => p[0]));
      const top = Math.max(...all.map(p => p[1]), 0) * 1.1 || 1;
      const x = t => (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * W;
      const y = v => H - (v / top) * H;
      svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
      svg.setAttribute("preserveAspectRatio", "none");
      svg.innerHTML = names.map((n, i) => {
        let d = "", pen = "M";
        for (const [t, v] of series[n]) {
          if (v == null) { pen = "M"; continue; }
          d += `${pen}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
          pen = "L";
        }
        return `<path data-series="${esc(n)}" d="${d}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.5" vector-effect="non-scaling-stroke"/>`;
      }).join("");
      svg.dataset.points = String(Math.max(0, ...names.map(n => series[n].filter(p => p[1] != null).length)));
      const legend = document.querySelector(`.legend[data-for="${id}"]`);
      legend.innerHTML = names.map((n, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${esc(n)}</span>`).join("")
        + `<span>max ${all.length ? esc(formats[id](top / 1.1)) : "–"}</span>`;
    }

    function showConnections(s) {
      show($("conn-open"), s.connections.open, count);
      const states = Object.entries(s.connections.states);
      $("conn-states").tBodies[0].innerHTML = states.map(([state, n]) =>
        `<tr data-state="${esc(state)}"><td>${esc(state)}</td><td data-field="count"${cell(n, count)}</td></tr>`).join("");
      record("chart-connections", "open", s.time, s.connections.open);
      for (const [state, n] of states) record("chart-connections", state, s.time, n);
    }

    function showRequests(s, prev, dt) {
      const classes = Object.entries(s.requests.classes);
      $("requests").tBodies[0].innerHTML = classes.map(([c, n]) => {
        const r = prev ? rate(n, prev.requests.classes[c], dt) : null;
        return `<tr data-class="${esc(c)}"><td>${esc(c)}</td><td data-field="rate"${cell(r, perSecond)}</td><td data-field="total"${cell(n, count)}</td></tr>`;
      }).join("");
      show($("req-total"), s.requests.total, count);
      const all = prev ? rate(s.requests.total, prev.requests.total, dt) : null;
      show($("rps-total"), all, perSecond);
      if (all == null) return;
      record("chart-requests", "all", s.time, all);
      for (const [c, n] of classes) {
        if (n > 0 || charts["chart-requests"][c]) record("chart-requests", c, s.time, rate(n, prev.requests.classes[c], dt));
      }
    }

    // Percentiles of the requests answered since the oldest poll kept (up to WINDOW polls ago).
    function showLatency(s, old) {
      if (old === s) return;
      const now = s.latency, then = old.latency;
      const total = now.count - then.count;
      const deltas = now.buckets.map((c, i) => c - (then.buckets[i] || 0));
      show($("latency-window"), s.time - old.time, v => v.toFixed(1));
      show($("latency-count"), total, count);
      for (const q of [50, 90, 99]) {
        const v = quantile(q / 100, now.le, deltas, total);
        show($("p" + q), v, seconds);
        record("chart-latency", "p" + q, s.time, v);
      }
    }

    function showWorkers(s, prev, dt) {
      show($("workers-count"), s.workers.count, count);
      $("workers").tBodies[0].innerHTML = s.workers.each.map(w => {
        const before = prev && prev.workers.each.find(p => p.worker === w.worker);
        // At most 1: the busy counter and the poll's time are read a moment apart.
        const r = before ? rate(w.busy_seconds, before.busy_seconds, dt) : null;
        const busy = r == null ? null : Math.min(1, r);
        if (busy != null) record("chart-utilization", "worker " + w.worker, s.time, busy);
        return `<tr data-worker="${esc(w.worker)}"><td>${esc(w.worker)}</td><td data-field="utilization"${cell(busy, percent)}</td>`
          + `<td data-field="rss"${cell(w.rss_bytes, bytes)}</td><td data-field="connections"${cell(w.connections, count)}</td></tr>`;
      }).join("");
    }

    function showServers(s, prev, dt) {
      const rows = [];
      for (const b of s.backends) {
        const before = prev && prev.backends.find(p => p.name === b.name);
        for (const v of b.servers) {
          const old = before && before.servers.find(p => p.server === v.server);
          const r = old ? rate(v.requests, old.requests, dt) : null;
          rows.push(`<tr data-backend="${esc(b.name)}" data-server="${esc(v.server)}"><td>${esc(b.name)}</td><td class="left">${esc(v.server)}</td>`
            + `<td data-field="up" data-value="${v.up}" class="${v.up === 1 ? "up" : "down"}">${v.up === 1 ? "up" : "down"}</td>`
            + `<td data-field="active"${cell(v.active, count)}</td><td data-field="idle"${cell(v.idle, count)}</td>`
            + `<td data-field="queue"${cell(b.queue, count)}</td><td data-field="requests"${cell(v.requests, count)}</td>`
            + `<td data-field="rate"${cell(r, perSecond)}</td></tr>`);
        }
      }
      $("servers").tBodies[0].innerHTML = rows.join("");
    }

    function update(s) {
      snapshots.push(s);
      if (snapshots.length > WINDOW + 1) snapshots.shift();
      const prev = snapshots.length > 1 ? snapshots[snapshots.length - 2] : null;
      const dt = prev ? s.time - prev.time : 0;
      showConnections(s);
      showRequests(s, prev, dt);
      showLatency(s, snapshots[0]);
      showWorkers(s, prev, dt);
      showServers(s, prev, dt);
      for (const id of Object.keys(formats)) if (charts[id]) draw(id);
      $("updated").textContent = new Date(s.time * 1000).toLocaleTimeString();
    }

    function fail(message) {
      $("error").textContent = message;
      document.body.dataset.error = message;
    }

    async function poll() {
      try {
        const response = await fetch("status.json", { cache: "no-store" });
        if (!response.ok) throw new Error("status.json: HTTP " + response.status);
        update(await response.json());
        polls++;
        document.body.dataset.polls = String(polls);
        $("error").textContent = "";
        delete document.body.dataset.error;
        if (Number($("chart-requests").dataset.points) >= 2) document.body.dataset.ready = "true";
      } catch (e) {
        fail(String(e && e.message || e));
      }
      setTimeout(poll, 1000);
    }

    window.addEventListener("error", e => fail("script error: " + e.message));
    poll();
    </script>
    </body>
    </html>
    """#
}
