// dynamo-lab dashboard: plain JavaScript, no dependency, nothing fetched from elsewhere.
// The server (dynamo_lab/dashboard/server.py) streams server-sent events: "hello" (the
// snapshot and the recent past), "snapshot" (the cluster's state, when it changed), "strip"
// (new sends, their ends, the cluster's marks), "say" (a narration line), "demo" (the step
// a demo is on), "reset" (another cluster). Controls POST JSON to /api/*.
"use strict";

// Okabe-Ito: one colour per node (tokens, lanes), safe for colour-blind viewers.
const NODE_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
                      "#8C7A00", "#000000"];
// Message categories on the strip: colour, dash pattern, word (colour is never alone).
const CATEGORY = {
  client:        {colour: "#000000", dash: [],        word: "client"},
  forward:       {colour: "#D55E00", dash: [10, 4],   word: "forward"},
  write:         {colour: "#0072B2", dash: [],        word: "replica put / ack"},
  read:          {colour: "#56B4E9", dash: [6, 3],    word: "replica get / reply"},
  hint:          {colour: "#E69F00", dash: [],        word: "hinted put / handoff", width: 4},
  repair:        {colour: "#009E73", dash: [2, 3],    word: "read repair"},
  "anti-entropy":{colour: "#009E73", dash: [8, 3, 2, 3], word: "anti-entropy"},
  transfer:      {colour: "#CC79A7", dash: [],        word: "key transfer", width: 4},
  gossip:        {colour: "#999999", dash: [1, 3],    word: "gossip"},
  other:         {colour: "#555555", dash: [4, 4],    word: "other"},
};
const STATE_WORD = {up: "UP", suspected: "SUSPECTED", down: "DOWN"};
const STATE_SHAPE = {up: "\u25CF", suspected: "\u25B2", down: "\u2716"};
const MARK_WORD = {crash: "kill -9", restart: "restart", partition: "split", heal: "heal",
                   join: "join", leave: "leave", wipe: "wipe"};

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined)
    e.append(typeof kid === "string" ? document.createTextNode(kid) : kid);
  return e;
};

// Everything the page knows; window.dash is read by the browser tests.
const dash = window.dash = {
  snapshot: null, clusterId: null, t0: 0,
  sends: [], byId: new Map(), marks: [],
  narration: [], demo: null,
  history: {},            // node -> [{t, state}], every state the page showed
  serverNow: 0, receivedAt: 0, paused: false, pausedAt: 0,
  sides: {}, cart: {key: "cart", values: null, context: null},
  stats: {events: 0, snapshots: 0, lags: [], frames: 0, drawMs: []},
};

// -- the stream -------------------------------------------------------------------------------

function connect() {
  const src = new EventSource("/api/events");
  src.addEventListener("open", () => setConn("live"));
  src.addEventListener("error", () => setConn("lost"));
  src.addEventListener("hello", (e) => {
    const h = JSON.parse(e.data);
    resetStrip();
    clock(h.now);
    onSnapshot(h.snapshot);
    addStrip(h, false);
    $("narration").replaceChildren();
    dash.narration = [];
    for (const line of h.narration) onSay(line, true);
    dash.demo = h.demo || null;
    renderDemo();
  });
  src.addEventListener("snapshot", (e) => {
    const s = JSON.parse(e.data);
    clock(s.now);
    onSnapshot(s);
  });
  src.addEventListener("strip", (e) => {
    const b = JSON.parse(e.data);
    clock(b.now);
    addStrip(b);
  });
  src.addEventListener("say", (e) => onSay(JSON.parse(e.data), false));
  src.addEventListener("demo", (e) => { dash.demo = JSON.parse(e.data); renderDemo(); });
  src.addEventListener("reset", () => { resetStrip(); dash.demo = null; renderDemo(); });
  src.addEventListener("error-line", () => {});
  dash.source = src;
}

function setConn(state) {
  const c = $("conn");
  c.dataset.conn = state;
  c.textContent = state === "live" ? "live" : "reconnecting";
}

function clock(serverNow) {
  if (typeof serverNow !== "number") return;
  dash.serverNow = serverNow;
  dash.receivedAt = performance.now();
}

function now() {  // the cluster's time (seconds since it started), as the server sees it
  return dash.serverNow + (performance.now() - dash.receivedAt) / 1000;
}

// -- snapshot: header, ring, cards, views, network, where the key lives ------------------------

function nodeColour(name) {
  const nodes = (dash.snapshot && dash.snapshot.nodes) || [];
  const i = Math.max(0, nodes.indexOf(name));
  return NODE_COLOURS[i % NODE_COLOURS.length];
}

function onSnapshot(s) {
  dash.snapshot = s;
  dash.stats.snapshots++;
  if (!s || !s.cluster) {
    $("no-cluster").hidden = false;
    $("no-cluster").textContent = (s && s.message) || "no cluster";
    $("main").hidden = true;
    $("cluster-line").textContent = "no cluster";
    return;
  }
  $("no-cluster").hidden = true;
  $("main").hidden = false;
  if (dash.clusterId !== s.cluster.id) {
    dash.clusterId = s.cluster.id;
    dash.t0 = s.cluster.t0 || 0;
    dash.sides = {};
    $("show-ae").checked = s.cluster.demo === "antientropy";
    $("show-gossip").checked = false;
  }
  const c = s.cluster.config;
  $("cluster-line").textContent = `cluster ${s.cluster.id} \u00b7 ${s.nodes.length} nodes \u00b7 ` +
    `N=${c.n} R=${c.r} W=${c.w} \u00b7 suspect after ${c.suspect_after_s} s` +
    (s.cluster.tracing ? "" : " \u00b7 no trace: start it with `cluster up --trace`") +
    (s.busy ? ` \u00b7 busy: ${s.busy}` : "");
  const t = now();
  for (const n of s.nodes) {
    const v = s.verdicts[n];
    const h = dash.history[n] || (dash.history[n] = []);
    const key = `${v.state}/${v.process}`;
    if (!h.length || h[h.length - 1].key !== key)
      h.push({t, at: Date.now(), state: v.state, process: v.process, by: v.by, key});
  }
  renderRing(s);
  renderCards(s);
  renderViews(s);
  renderNetwork(s);
  renderWhere(s);
  renderVia(s);
  renderDemo();
}

function angleOf(token) {  // a 128-bit ring position (decimal string) -> radians, 0 at the top
  const frac = Number(BigInt(token) * 1000000n / (1n << 128n)) / 1000000;
  return frac * 2 * Math.PI;
}

function polar(r, a) { return [r * Math.sin(a), -r * Math.cos(a)]; }

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function renderRing(s) {
  const g = $("ring");
  g.replaceChildren();
  const R = 230;
  g.append(svg("circle", {cx: 0, cy: 0, r: R, fill: "none", stroke: "#111", "stroke-width": 3}));
  const tokens = [];
  for (const [node, list] of Object.entries(s.ring)) for (const t of list) tokens.push({node, a: angleOf(t)});
  tokens.sort((x, y) => x.a - y.a);
  const pref = s.watch.preference || [];
  // Arcs: each token owns the stretch of ring before it (counter-clockwise to the previous).
  for (let i = 0; i < tokens.length; i++) {
    const prev = tokens[(i - 1 + tokens.length) % tokens.length].a;
    const cur = tokens[i].a;
    const a0 = prev, a1 = cur < prev ? cur + 2 * Math.PI : cur;
    const [x0, y0] = polar(R, a0), [x1, y1] = polar(R, a1);
    const large = a1 - a0 > Math.PI ? 1 : 0;
    const state = s.verdicts[tokens[i].node] ? s.verdicts[tokens[i].node].state : "up";
    g.append(svg("path", {d: `M ${x0} ${y0} A ${R} ${R} 0 ${large} 1 ${x1} ${y1}`,
      fill: "none", stroke: nodeColour(tokens[i].node), "stroke-width": 14,
      "stroke-dasharray": state === "down" ? "4 6" : state === "suspected" ? "14 5" : "none",
      opacity: state === "down" ? 0.45 : 1}));
  }
  for (const tk of tokens) {
    const v = s.verdicts[tk.node] || {state: "up"};
    const [x, y] = polar(R + 26, tk.a);
    const [xi, yi] = polar(R - 10, tk.a), [xo, yo] = polar(R + 10, tk.a);
    g.append(svg("line", {x1: xi, y1: yi, x2: xo, y2: yo, stroke: "#111", "stroke-width": 3}));
    g.append(svg("text", {x, y: y + 8, "text-anchor": "middle", "font-size": 24,
      "font-weight": "bold", fill: v.state === "down" ? "#777" : "#111",
      "text-decoration": v.state === "down" ? "line-through" : "none",
      "data-token-of": tk.node}, tk.node));
  }
  // The watched key: a marker at its position and the numbered preference list.
  const ka = angleOf(s.watch.position);
  const [kx, ky] = polar(R - 40, ka), [kx2, ky2] = polar(R - 8, ka);
  g.append(svg("line", {x1: kx, y1: ky, x2: kx2, y2: ky2, stroke: "#D55E00", "stroke-width": 4,
    "marker-end": ""}));
  g.append(svg("circle", {cx: kx, cy: ky, r: 9, fill: "#D55E00", stroke: "#111", "stroke-width": 2}));
  const [lx, ly] = polar(R - 80, ka);
  g.append(svg("text", {x: lx, y: ly + 8, "text-anchor": "middle", "font-size": 24,
    "font-weight": "bold", fill: "#D55E00"}, s.watch.key));
  // Centre: every node with its state (shape + word).
  let y = -((s.nodes.length - 1) * 34) / 2;
  for (const n of s.nodes) {
    const v = s.verdicts[n];
    const row = svg("g", {"data-node": n, "data-state": v.state});
    const rank = pref.indexOf(n);
    if (rank >= 0) row.append(svg("text", {x: -165, y: y + 8, "font-size": 20, fill: "#D55E00",
      "font-weight": "bold"}, `#${rank + 1}`));
    row.append(svg("circle", {cx: -110, cy: y, r: 12, fill: nodeColour(n), stroke: "#111", "stroke-width": 2}));
    row.append(svg("text", {x: -90, y: y + 9, "font-size": 26, "font-weight": "bold"}, n));
    row.append(svg("text", {x: -55, y: y + 8, "font-size": 22, "font-weight": "bold",
      fill: v.state === "up" ? "#0072B2" : v.state === "down" ? "#111" : "#8a4b00"},
      STATE_SHAPE[v.state] + " " + STATE_WORD[v.state]));
    g.append(row);
    y += 34;
  }
  $("ring-key").textContent = `${s.watch.key} \u2192 ${pref.map((n, i) => `#${i + 1} ${n}`).join(", ")}  ` +
    "(its N home replicas, clockwise from its position)";
}

function renderCards(s) {
  const box = $("cards");
  box.replaceChildren();
  for (const n of s.nodes) {
    const v = s.verdicts[n], p = s.per_node[n] || {};
    const hints = Object.entries(p.hints || {});
    const held = hints.reduce((a, [, c]) => a + c, 0);
    const card = el("div", {class: "card", "data-node": n, "data-state": v.state,
                            "data-process": v.process});
    card.append(el("div", {class: "name"},
      el("span", {class: "swatch", style: `background:${nodeColour(n)}`}), n,
      el("span", {class: "badge", "data-state": v.state},
         el("span", {class: "shape", "aria-hidden": "true", text: STATE_SHAPE[v.state]}),
         STATE_WORD[v.state])));
    if (v.state === "suspected") card.append(el("div", {class: "by", text: `suspected by ${v.by.join(", ")}`}));
    if (v.process === "killed") card.append(el("div", {class: "process",
      text: v.state === "down" ? "no process (killed)" : "process killed: not noticed yet"}));
    if (v.process === "silent") card.append(el("div", {class: "process", text: "running, not answering"}));
    const facts = el("div", {class: "facts"});
    if (p.running && p.generation !== undefined) {
      facts.append(el("div", {}, "keys ", el("b", {text: String(p.keys)}), " \u00b7 hints ",
        el("b", {text: String(held)}), held ? ` (${hints.map(([k, c]) => `for ${k}: ${c}`).join(", ")})` : ""));
      facts.append(el("div", {}, `gen ${p.generation} \u00b7 in flight ${p.inflight}/${p.max_inflight}` +
        ` \u00b7 pid ${p.pid}`));
    } else if (p.running) {
      facts.append(el("div", {text: `pid ${p.pid} \u00b7 starting or not answering`}));
    } else {
      facts.append(el("div", {text: "no process: its store waits on disk"}));
    }
    card.append(facts);
    card.append(el("div", {class: "buttons"},
      el("button", {type: "button", class: "danger", "data-action": "kill", "data-node": n,
                    disabled: !p.running, onclick: () => act({action: "kill", node: n})}, "kill -9"),
      el("button", {type: "button", "data-action": "restart", "data-node": n,
                    disabled: p.running, onclick: () => act({action: "restart", node: n})}, "restart")));
    box.append(card);
  }
}

const VIEW_MARK = {up: "\u25CF", suspected: "?", cut: "\u2702", self: "\u2014", unknown: "\u00b7",
                   leaving: "!", left: "x", none: "\u2716"};

function renderViews(s) {
  const t = $("views");
  t.replaceChildren();
  const head = el("tr", {}, el("th", {text: "asked \u2193 / judged \u2192"}));
  for (const n of s.nodes) head.append(el("th", {style: `color:${nodeColour(n)}`, text: n}));
  t.append(head);
  for (const obs of s.nodes) {
    const row = el("tr", {}, el("th", {style: `color:${nodeColour(obs)}`, text: obs}));
    const view = s.views[obs];
    for (const subj of s.nodes) {
      const mark = view ? view[subj] : "none";
      row.append(el("td", {"data-mark": mark, "data-obs": obs, "data-subj": subj,
        title: view ? `${obs} believes ${subj} is ${mark}` : `${obs} does not answer`,
        text: VIEW_MARK[mark] || "?"}));
    }
    t.append(row);
  }
  const cap = el("caption", {class: "muted",
    text: "\u25CF up  ? suspected  \u2702 suspected, link cut  \u2716 no answer"});
  t.append(cap);
}

function renderNetwork(s) {
  const groups = s.groups || [s.nodes];
  $("net-state").textContent = groups.length > 1 ?
    "\u2702 split: " + groups.map((g) => g.join(" ")).join("  |  ") : "\u25CF whole: every link open";
  $("net-state").dataset.split = groups.length > 1 ? "yes" : "no";
  const sides = $("sides");
  if (!Object.keys(dash.sides).length || Object.keys(dash.sides).length !== s.nodes.length) {
    dash.sides = {};
    s.nodes.forEach((n, i) => { dash.sides[n] = i < Math.floor(s.nodes.length / 2) ? 1 : 2; });
  }
  sides.replaceChildren();
  for (const n of s.nodes) {
    sides.append(el("button", {type: "button", class: "side-btn", "data-node": n,
      "data-side": dash.sides[n], style: `border-color:${nodeColour(n)}`,
      onclick: () => { dash.sides[n] = dash.sides[n] % 3 + 1; renderNetwork(dash.snapshot); }},
      `${n} \u00b7 ${dash.sides[n]}`));
  }
  $("drop-now").textContent = `now: ${Math.round((s.drop || 0) * 100)}% lost`;
}

function renderVia(s) {
  const sel = $("cart-via");
  const keep = sel.value;
  const want = ["", ...s.nodes];
  if ([...sel.options].map((o) => o.value).join() !== want.join()) {
    sel.replaceChildren(el("option", {value: ""}, "its first replica up"));
    for (const n of s.nodes) sel.append(el("option", {value: n}, n));
    sel.value = want.includes(keep) ? keep : "";
  }
}

function renderWhere(s) {
  const w = s.watch;
  $("where-key").textContent = w.key;
  const t = $("where");
  t.replaceChildren(el("tr", {}, el("th", {text: "node"}), el("th", {text: "role"}),
    el("th", {text: "its own copy"}), el("th", {text: "kept as a hint"})));
  for (const n of s.nodes) {
    const h = w.holders[n];
    const rank = w.preference.indexOf(n);
    const fmt = (vs) => vs.map((v) => (v.deleted ? "(deleted)" : JSON.stringify(v.value)) +
      " @" + v.clock).join("  ");
    t.append(el("tr", {"data-node": n},
      el("td", {style: `color:${nodeColour(n)};font-weight:bold`, text: n}),
      el("td", {text: rank >= 0 ? `replica #${rank + 1}` : ""}),
      el("td", {text: h ? fmt(h.own) || "\u2014" : (s.per_node[n] && s.per_node[n].running ? "\u2014" : "(down)")}),
      el("td", {text: h ? Object.entries(h.hints).map(([k, vs]) => `for ${k}: ${fmt(vs)}`).join("; ") : ""})));
  }
}

// -- narration and the demo --------------------------------------------------------------------

function onSay(line, quiet) {
  const list = $("narration");
  const existing = dash.narration.find((x) => x.n === line.n);
  const text = `T=${line.t.toFixed(1)}  ${line.text}`;
  if (existing && line.update) {
    existing.text = line.text;
    existing.li.replaceChildren(el("span", {class: "t", text: `T=${line.t.toFixed(1)}`}), line.text);
  } else {
    const li = el("li", {"data-kind": line.kind || "info"},
      el("span", {class: "t", text: `T=${line.t.toFixed(1)}`}), line.text);
    dash.narration.push({n: line.n, text: line.text, kind: line.kind, li});
    list.prepend(li);
    while (list.children.length > 60) list.lastChild.remove();
  }
  if (!quiet || true) {
    const tk = $("ticker");
    tk.textContent = line.text;
    tk.dataset.kind = line.kind || "info";
    tk.title = text;
  }
}

function renderDemo() {
  const box = $("demo-state");
  const d = dash.demo;
  const hosted = dash.snapshot && dash.snapshot.demo_host;
  const running = hosted && hosted.running;
  $("btn-next").hidden = !(running && d && d.phase === "waiting");
  $("btn-demo-stop").hidden = !running;
  $("btn-demo-start").disabled = !!running;
  if (!d) { box.replaceChildren(el("p", {class: "muted", text: "No demo running."})); return; }
  const parts = [el("div", {class: "muted",
    text: `${d.title} \u00b7 step ${d.step} of ${d.of}` + (d.step_title ? `: ${d.step_title}` : "")})];
  if (d.say) parts.push(el("div", {class: "say", text: d.say}));
  if (d.point) parts.push(el("div", {class: "point", text: "\u261E look at: " + d.point}));
  if (d.phase === "running") parts.push(el("div", {class: "muted", text: "working..."}));
  if (d.phase === "waiting") parts.push(el("div", {class: "muted",
    text: running ? "press Next step" : "waiting for Enter in the terminal"}));
  if (d.result) parts.push(el("div", {class: "result", text: "\u2192 " + d.result}));
  if (d.phase === "finished") parts.push(el("div", {class: "result", text: "demo finished"}));
  box.replaceChildren(...parts);
}

// -- the strip -----------------------------------------------------------------------------------

function resetStrip() {
  dash.sends = [];
  dash.byId = new Map();
  dash.marks = [];
}

function addStrip(b, live = true) {
  const wall = Date.now() / 1000;
  for (const m of b.sends || []) {
    if (dash.byId.has(m.i)) continue;
    m.end = null; m.drop = null;
    dash.sends.push(m);
    dash.byId.set(m.i, m);
    dash.stats.events++;
    if (live && dash.t0) dash.stats.lags.push(wall - (dash.t0 + m.t));
  }
  for (const e of b.ends || []) {
    const m = dash.byId.get(e.i);
    if (m) { m.end = e.t; m.drop = e.x; }
  }
  for (const k of b.marks || []) dash.marks.push(k);
  if (dash.stats.lags.length > 5000) dash.stats.lags.splice(0, dash.stats.lags.length - 5000);
  const horizon = now() - 130;
  if (dash.sends.length > 40000 || (dash.sends.length && dash.sends[0].t < horizon)) {
    let cut = 0;
    while (cut < dash.sends.length && (dash.sends[cut].t < horizon || dash.sends.length - cut > 40000)) {
      dash.byId.delete(dash.sends[cut].i);
      cut++;
    }
    dash.sends.splice(0, cut);
  }
}

function lanes() {
  const s = dash.snapshot;
  return ["clients", ...((s && s.nodes) || [])];
}

function laneOf(name) {
  return name.startsWith("client:") || name.startsWith("http:") ? "clients" : name;
}

function visible(m, key, gossip, ae) {
  if (m.c === "gossip" && !gossip) return false;
  if (m.c === "anti-entropy" && !ae) return false;
  if (key && !(m.keys || []).includes(key)) return false;
  return true;
}

function drawStrip() {
  const t0 = performance.now();
  const canvas = $("strip");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const names = lanes();
  const left = 110, right = 16, top = 30, bottom = 26;
  const span = Number($("strip-window").value);
  const end = dash.paused ? dash.pausedAt : now();
  const start = end - span;
  const x = (t) => left + (w - left - right) * (t - start) / span;
  const laneH = (h - top - bottom) / Math.max(1, names.length - 1);
  const y = (name) => top + laneH * Math.max(0, names.indexOf(laneOf(name)));
  const states = (dash.snapshot && dash.snapshot.verdicts) || {};
  // partitions: shade from split to heal
  let splitAt = null;
  ctx.fillStyle = "rgba(240, 228, 66, 0.25)";
  for (const mk of dash.marks) {
    if (mk.kind === "partition" && splitAt === null) splitAt = mk.t;
    if (mk.kind === "heal" && splitAt !== null) {
      if (mk.t > start) ctx.fillRect(x(Math.max(start, splitAt)), top - 14, x(mk.t) - x(Math.max(start, splitAt)), h - top - bottom + 28);
      splitAt = null;
    }
  }
  if (splitAt !== null) ctx.fillRect(x(Math.max(start, splitAt)), top - 14, x(end) - x(Math.max(start, splitAt)), h - top - bottom + 28);
  // lanes
  ctx.font = "bold 22px DejaVu Sans, Arial, sans-serif";
  ctx.textBaseline = "middle";
  for (const n of names) {
    const yy = y(n);
    const st = states[n] ? states[n].state : "up";
    ctx.strokeStyle = n === "clients" ? "#777" : nodeColour(n);
    ctx.lineWidth = n === "clients" ? 1 : 3;
    ctx.setLineDash(st === "down" ? [3, 8] : st === "suspected" ? [14, 6] : []);
    ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(w - right, yy); ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = n === "clients" ? "#555" : "#111";
    ctx.fillText(n === "clients" ? "clients" : `${n} ${STATE_SHAPE[st]}`, 8, yy);
  }
  // time axis
  ctx.font = "16px DejaVu Sans, Arial, sans-serif";
  ctx.fillStyle = "#555";
  const stepS = span <= 5 ? 1 : span <= 15 ? 2 : 10;
  for (let t = Math.ceil(start / stepS) * stepS; t <= end; t += stepS) {
    const xx = x(t);
    ctx.fillRect(xx, h - bottom + 2, 1, 6);
    ctx.fillText(`${t.toFixed(0)} s`, xx - 10, h - 8);
  }
  // messages
  const key = $("strip-key").value.trim();
  const gossip = $("show-gossip").checked, ae = $("show-ae").checked;
  const shown = [];
  for (let i = dash.sends.length - 1; i >= 0; i--) {
    const m = dash.sends[i];
    if (m.t < start - 2) break;
    if (m.t > end || !visible(m, key, gossip, ae)) continue;
    shown.push(m);
  }
  const labels = shown.filter((m) => m.c !== "gossip").length <= 150;
  const placed = [];
  for (const m of shown) {
    const cat = CATEGORY[m.c] || CATEGORY.other;
    const x1 = x(m.t), y1 = y(m.s), y2 = y(m.d);
    // loopback delivers in about a millisecond: give every arrow a visible slant
    const tEnd = m.end !== null ? Math.max(m.end, m.t + span / 120) : null;
    ctx.strokeStyle = cat.colour; ctx.fillStyle = cat.colour;
    ctx.lineWidth = cat.width || (m.c === "gossip" ? 1 : 2.5);
    ctx.setLineDash(cat.dash);
    ctx.beginPath();
    if (m.drop) {               // lost or cut: half way, then a cross
      const xm = x1 + 14, ym = (y1 + y2) / 2;
      ctx.moveTo(x1, y1); ctx.lineTo(xm, ym); ctx.stroke();
      ctx.setLineDash([]); ctx.strokeStyle = "#D55E00"; ctx.lineWidth = 3;
      ctx.beginPath(); ctx.moveTo(xm - 6, ym - 6); ctx.lineTo(xm + 6, ym + 6);
      ctx.moveTo(xm + 6, ym - 6); ctx.lineTo(xm - 6, ym + 6); ctx.stroke();
      continue;
    }
    if (tEnd === null) {        // in flight (or never arrives): a short stub
      ctx.moveTo(x1, y1); ctx.lineTo(x1 + 6, y1 + (y2 - y1) * 0.2); ctx.stroke();
      continue;
    }
    const x2 = x(tEnd);
    ctx.moveTo(x1, y1); ctx.lineTo(x2, y2); ctx.stroke();
    ctx.setLineDash([]);
    arrowHead(ctx, x1, y1, x2, y2, m.c === "gossip" ? 5 : 9);
    if (labels && m.c !== "gossip") {
      ctx.font = "bold 15px DejaVu Sans, Arial, sans-serif";
      const text = m.l + (m.keys && m.keys.length && !key ? ` ${m.keys[0]}` : "");
      const lw = ctx.measureText(text).width;
      let lx = (x1 + x2) / 2 + 4, ly = (y1 + y2) / 2;
      // no label over another: try a few places along the arrow, else leave it out
      for (const f of [0.5, 0.3, 0.7, 0.15, 0.85]) {
        ly = y1 + (y2 - y1) * f; lx = x1 + (x2 - x1) * f + 4;
        if (!placed.some((r) => lx < r[0] + r[2] && r[0] < lx + lw && Math.abs(ly - r[1]) < 17)) {
          placed.push([lx, ly, lw]);
          ctx.fillStyle = "rgba(255,255,255,0.85)";
          ctx.fillRect(lx - 2, ly - 9, lw + 4, 18);
          ctx.fillStyle = "#111";
          ctx.fillText(text, lx, ly);
          break;
        }
      }
    }
  }
  ctx.setLineDash([]);
  // marks: crash, restart, split, heal
  ctx.font = "bold 17px DejaVu Sans, Arial, sans-serif";
  let lastX = -1e9, row = 0;
  for (const mk of dash.marks) {
    if (mk.t < start || mk.t > end) continue;
    const xx = x(mk.t);
    row = xx - lastX < 70 ? row + 1 : 0;     // marks close together: labels on new rows
    lastX = xx;
    const lane = names.includes(mk.node) ? y(mk.node) : null;
    ctx.strokeStyle = "#111"; ctx.fillStyle = "#111"; ctx.lineWidth = 2;
    if (lane === null) {
      ctx.setLineDash([6, 4]);
      ctx.beginPath(); ctx.moveTo(xx, top - 14); ctx.lineTo(xx, h - bottom); ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillText(MARK_WORD[mk.kind] || mk.kind, xx + 4, top - 10 + 18 * row);
    } else if (mk.kind === "crash" || mk.kind === "wipe") {
      ctx.lineWidth = 5; ctx.strokeStyle = "#D55E00";
      ctx.beginPath(); ctx.moveTo(xx - 10, lane - 10); ctx.lineTo(xx + 10, lane + 10);
      ctx.moveTo(xx + 10, lane - 10); ctx.lineTo(xx - 10, lane + 10); ctx.stroke();
      ctx.fillText(MARK_WORD[mk.kind], xx + 12, lane - 16);
    } else {
      ctx.beginPath(); ctx.moveTo(xx, lane - 12); ctx.lineTo(xx + 14, lane); ctx.lineTo(xx, lane + 12);
      ctx.closePath(); ctx.fill();
      ctx.fillText(MARK_WORD[mk.kind] || mk.kind, xx + 16, lane - 16);
    }
  }
  // now
  ctx.fillStyle = "#111";
  ctx.fillRect(x(end) - 1, top - 14, 2, h - top - bottom + 14);
  dash.shown = shown;
  dash.geometry = {x, y, start, end};
  const hidden = dash.sends.filter((m) => m.t >= start && m.t <= end).length - shown.length;
  $("strip-count").textContent = `${shown.length} messages shown` +
    (hidden > 0 ? `, ${hidden} hidden by the filters` : "") + (dash.paused ? " \u00b7 PAUSED" : "");
  dash.stats.frames++;
  dash.stats.drawMs.push(performance.now() - t0);
  if (dash.stats.drawMs.length > 500) dash.stats.drawMs.shift();
}

function arrowHead(ctx, x1, y1, x2, y2, size) {
  const a = Math.atan2(y2 - y1, x2 - x1);
  ctx.beginPath();
  ctx.moveTo(x2, y2);
  ctx.lineTo(x2 - size * Math.cos(a - 0.4), y2 - size * Math.sin(a - 0.4));
  ctx.lineTo(x2 - size * Math.cos(a + 0.4), y2 - size * Math.sin(a + 0.4));
  ctx.closePath();
  ctx.fill();
}

function renderLegend() {
  const box = $("strip-legend");
  box.replaceChildren();
  for (const [name, cat] of Object.entries(CATEGORY)) {
    if (name === "other") continue;
    const s = svg("svg", {width: 44, height: 14});
    s.append(svg("line", {x1: 2, y1: 7, x2: 42, y2: 7, stroke: cat.colour,
      "stroke-width": cat.width || 3, "stroke-dasharray": cat.dash.join(" ")}));
    box.append(el("span", {}, s, cat.word));
  }
  box.append(el("span", {}, "\u2716 lost or cut \u00b7 \u25B6 restart \u00b7 shaded: network split"));
}

function stripClick(ev) {
  const g = dash.geometry;
  if (!g || !dash.shown) return;
  const r = $("strip").getBoundingClientRect();
  const px = ev.clientX - r.left, py = ev.clientY - r.top;
  let best = null, bestD = 30;
  for (const m of dash.shown) {
    const x1 = g.x(m.t), y1 = g.y(m.s), y2 = g.y(m.d);
    const d = Math.hypot(px - x1, py - (y1 + y2) / 2);
    if (d < bestD) { best = m; bestD = d; }
  }
  $("strip-detail").textContent = best ?
    `T=${best.t.toFixed(3)}  ${best.s} \u2192 ${best.d}  ${best.l}` +
    (best.keys.length ? `  (${best.keys.join(", ")})` : "") +
    (best.drop ? `  \u2716 ${best.drop}` : best.end !== null ? `  arrived after ${((best.end - best.t) * 1000).toFixed(1)} ms` : "  not arrived")
    : "";
}

// -- controls --------------------------------------------------------------------------------------

async function post(path, body) {
  const resp = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: JSON.stringify(body), credentials: "same-origin"});
  let answer = {};
  try { answer = await resp.json(); } catch (e) { answer = {ok: false, error: `HTTP ${resp.status}`}; }
  if (!resp.ok || answer.ok === false) throw new Error(answer.error || `HTTP ${resp.status}`);
  return answer;
}

function toast(text, kind) {
  const t = $("toast");
  t.textContent = text;
  t.dataset.kind = kind || "info";
  t.hidden = false;
  clearTimeout(dash.toastTimer);
  dash.toastTimer = setTimeout(() => { t.hidden = true; }, kind === "error" ? 8000 : 4000);
}

async function act(body) {
  try {
    toast(`${body.action}${body.node ? " " + body.node : ""}...`);
    const a = await post("/api/action", body);
    toast(a.message);
  } catch (e) { toast(e.message, "error"); }
}

function groups() {
  const by = {};
  for (const [n, side] of Object.entries(dash.sides)) (by[side] = by[side] || []).push(n);
  return Object.keys(by).sort().map((k) => by[k]);
}

async function kv(op, extra) {
  const key = $("cart-key").value.trim();
  const via = $("cart-via").value;
  try {
    const a = await post("/api/kv", {op, key, via, ...extra});
    if (op === "get") showRead(key, a);
    else {
      // The page keeps the context of the last Get: two puts made with it are two clients
      // that read the same version (siblings, if they meet). Get again to read the result.
      const ok = a.code === 200;
      toast(ok ? `put ${key} via ${a.via}: acknowledged by ${a.answer.replies.join(", ")}` +
                 (extra.context ? " (with the read's context)" : " (blind: no context)")
               : `put ${key} via ${a.via} failed: ${a.answer.error}`, ok ? "info" : "error");
      $("put-result").textContent = ok ? `last put: ${JSON.stringify(extra.value)} via ${a.via}, ` +
        `acknowledged by ${a.answer.replies.join(", ")}; press Get to read` : `last put failed: ${a.answer.error}`;
    }
    return a;
  } catch (e) { toast(e.message, "error"); }
}

function showRead(key, a) {
  const box = $("siblings");
  const ans = a.answer;
  dash.cart = {key, values: ans.values || [], context: ans.context || null, clock: a.clock};
  box.replaceChildren();
  const vals = dash.cart.values;
  box.dataset.count = String(vals.length);
  if (vals.length > 1) box.dataset.many = ""; else delete box.dataset.many;
  if (a.code === 503) box.append(el("div", {class: "empty", text: `quorum not reached: ${ans.error || ""}`}));
  else if (!vals.length) box.append(el("div", {class: "empty", text: `${key}: no value` + (ans.context ? " (deleted)" : "")}));
  vals.forEach((v, i) => {
    const items = Array.isArray(v) ? v.map((x) => el("span", {class: "chip", text: typeof x === "string" ? x : JSON.stringify(x)}))
                                   : [JSON.stringify(v)];
    box.append(el("div", {class: "sibling", "data-sibling": i},
      el("div", {class: "tag", text: vals.length > 1 ? `sibling ${i + 1} of ${vals.length}` : "the value"}),
      el("div", {class: "items"}, ...items)));
  });
  $("btn-merge").disabled = vals.length < 2;
  $("ctx").textContent = ans.context ? `read via ${a.via} (replies ${ans.replies.join(", ")}); context = clock ${a.clock || "?"}` : "";
  if (vals.length === 1) $("cart-value").value = JSON.stringify(vals[0]);
}

function merged(values) {
  if (values.every(Array.isArray)) {
    const seen = new Map();
    for (const v of values) for (const x of v) seen.set(JSON.stringify(x), x);
    return [...seen.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[1]);
  }
  return values[values.length - 1];
}

async function merge() {
  const c = dash.cart;
  if (!c.values || c.values.length < 2) return;
  const value = merged(c.values);
  $("cart-value").value = JSON.stringify(value);
  const a = await kv("put", {value, context: c.context});
  if (a && a.code === 200) await kv("get");
}

function parseValue() {
  try { return {ok: true, value: JSON.parse($("cart-value").value)}; }
  catch (e) { toast("the value must be JSON, e.g. [\"book\", \"pen\"]", "error"); return {ok: false}; }
}

async function loadDemos() {
  try {
    const a = await post("/api/demo", {action: "list"});
    const sel = $("demo-pick");
    sel.replaceChildren(...a.demos.map((d) => el("option", {value: d.name, title: d.summary}, d.title)));
  } catch (e) {
    $("demo-pick").hidden = true; $("btn-demo-start").hidden = true;
  }
}

function wire() {
  $("btn-partition").addEventListener("click", () => {
    const g = groups();
    if (g.length < 2) { toast("put at least one node on another side first", "error"); return; }
    act({action: "partition", groups: g});
  });
  $("btn-heal").addEventListener("click", () => act({action: "heal"}));
  $("btn-settle").addEventListener("click", () => act({action: "settle"}));
  $("drop").addEventListener("input", () => { $("drop-out").textContent = `${$("drop").value}%`; });
  $("btn-drop").addEventListener("click", () => act({action: "drop", probability: Number($("drop").value) / 100}));
  $("btn-get").addEventListener("click", () => kv("get"));
  $("btn-merge").addEventListener("click", merge);
  $("btn-put").addEventListener("click", () => {
    const v = parseValue();
    if (v.ok) kv("put", {value: v.value, context: dash.cart.key === $("cart-key").value.trim() ? dash.cart.context : null});
  });
  $("btn-blind").addEventListener("click", () => { const v = parseValue(); if (v.ok) kv("put", {value: v.value, context: null}); });
  $("cart-key").addEventListener("change", () => post("/api/watch", {key: $("cart-key").value.trim()}).catch((e) => toast(e.message, "error")));
  $("strip-pause").addEventListener("click", () => {
    dash.paused = !dash.paused;
    dash.pausedAt = now();
    $("strip-pause").textContent = dash.paused ? "Resume" : "Pause";
  });
  $("strip").addEventListener("click", stripClick);
  $("btn-next").addEventListener("click", () => post("/api/demo", {action: "next"}).catch((e) => toast(e.message, "error")));
  $("btn-demo-stop").addEventListener("click", () => post("/api/demo", {action: "stop"}).catch((e) => toast(e.message, "error")));
  $("btn-demo-start").addEventListener("click", async () => {
    const name = $("demo-pick").value;
    if (dash.snapshot && dash.snapshot.cluster &&
        !window.confirm("The demo stops the running cluster and starts its own. Go on?")) return;
    try { toast((await post("/api/demo", {action: "start", name, replace: true})).message); }
    catch (e) { toast(e.message, "error"); }
  });
  window.addEventListener("keydown", (e) => {   // a clicker's "next" key moves the demo on
    if ((e.key === "PageDown" || e.key === "ArrowRight") && !$("btn-next").hidden &&
        !["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)) {
      e.preventDefault(); $("btn-next").click();
    }
  });
}

function frame() {
  if (dash.snapshot && dash.snapshot.cluster) {
    try { drawStrip(); } catch (e) { console.error("strip:", e); }
  }
  setTimeout(() => requestAnimationFrame(frame), 66);   // about 15 frames a second is plenty
}

renderLegend();
wire();
loadDemos();
connect();
requestAnimationFrame(frame);
