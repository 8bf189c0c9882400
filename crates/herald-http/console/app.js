// Herald console: plain JavaScript, no build step, no dependencies.
//
// It polls the JSON API of PROTOCOL.md 16.1 once a second and renders one
// view chosen by the URL fragment (#/, #/topics, #/topics/NAME, #/publish,
// #/connections), so the server serves a single page and every console path
// stays clear of /api and /metrics. Each view builds its static parts once
// (forms keep what the user typed) and fills its live parts on each poll.
"use strict";

const POLL_MS = 1000;
const HISTORY = 120; // samples kept for the rate charts (two minutes)
const API = "/api/v1";

const samples = []; // {t, published, delivered, acked} from /overview
let overview = null;
let current = null; // the mounted view: {name, update()}
let timer = null;
let failures = 0;

// ---------- helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

const nf = new Intl.NumberFormat("en-US");
function num(n) { return n === undefined || n === null ? "–" : nf.format(n); }
function rate(n) {
  if (n === null || n === undefined || !isFinite(n)) return "–";
  return n >= 100 ? nf.format(Math.round(n)) : n.toFixed(1);
}
function age(ms) {
  if (!ms) return "–";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return (s / 60).toFixed(1) + " min";
  if (s < 86400) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}
function enc(s) { return encodeURIComponent(s); }

async function api(path, init) {
  const res = await fetch(API + path, Object.assign({ cache: "no-store" }, init));
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { error: "bad_json", message: text }; }
  if (!res.ok) {
    const err = new Error((body && body.message) || res.statusText);
    err.status = res.status;
    err.code = body && body.error;
    throw err;
  }
  return body;
}

function banner(message) {
  const b = document.getElementById("banner");
  if (message) { b.textContent = message; b.hidden = false; } else { b.hidden = true; }
}

// Fills a tbody with rows (arrays of cells) or an empty-state row.
function fillRows(tbody, rows, columns, emptyText) {
  tbody.replaceChildren();
  if (rows.length === 0) {
    tbody.append(el("tr", {}, el("td", { colspan: String(columns), class: "muted", text: emptyText })));
    return;
  }
  for (const cells of rows) tbody.append(cells);
}

function table(headers) {
  const head = el("tr");
  for (const h of headers) {
    const numeric = h.startsWith("#");
    const th = el("th", { text: numeric ? h.slice(1) : h });
    if (numeric) th.className = "num";
    head.append(th);
  }
  const tbody = el("tbody");
  return { node: el("table", {}, el("thead", {}, head), tbody), tbody };
}

function row(...cells) { return el("tr", {}, ...cells); }
function td(text, cls) { return el("td", cls ? { class: cls, text: String(text) } : { text: String(text) }); }
function tdNum(n) { return el("td", { class: "num", text: num(n) }); }
function tdLink(text, href, attrs) {
  return el("td", Object.assign({ class: "name" }, attrs || {}), el("a", { href, text }));
}

// ---------- rate charts

// Rate per second between successive samples, for one counter.
function rates(key) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].t - samples[i - 1].t) / 1000;
    const d = samples[i][key] - samples[i - 1][key];
    out.push(dt > 0 && d >= 0 ? d / dt : 0);
  }
  return out;
}

function drawChart(canvas, values, color) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
  if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#e6e9ef";
  g.lineWidth = 1;
  g.beginPath(); g.moveTo(0, h - 0.5); g.lineTo(w, h - 0.5); g.stroke();
  if (values.length < 2) return;
  const max = Math.max(1, ...values) * 1.15;
  const step = w / (HISTORY - 2);
  const x0 = w - (values.length - 1) * step;
  const y = (v) => h - 2 - (v / max) * (h - 6);
  g.beginPath();
  g.moveTo(x0, h);
  values.forEach((v, i) => g.lineTo(x0 + i * step, y(v)));
  g.lineTo(x0 + (values.length - 1) * step, h);
  g.closePath();
  g.fillStyle = color + "22";
  g.fill();
  g.beginPath();
  values.forEach((v, i) => (i ? g.lineTo(x0 + i * step, y(v)) : g.moveTo(x0, y(v))));
  g.strokeStyle = color;
  g.lineWidth = 1.6;
  g.stroke();
  g.fillStyle = "#8a94a6";
  g.font = "11px " + getComputedStyle(document.body).fontFamily;
  g.fillText("max " + rate(Math.max(...values)) + "/s", 4, 12);
}

// ---------- views

function overviewView() {
  const series = [
    ["published", "Published", "--pub"],
    ["delivered", "Delivered", "--del"],
    ["acked", "Acked", "--ack"],
  ];
  const cards = el("div", { class: "cards" });
  const parts = {};
  for (const [key, label, color] of series) {
    const value = el("div", { class: "value", "data-rate": key, text: "–" });
    const canvas = el("canvas", { "aria-label": label + " per second, last two minutes" });
    const total = el("span", { class: "mono", text: "" });
    cards.append(el("section", { class: "card" },
      el("div", { class: "label" }, el("span", { text: label + " / s" }), total), value, canvas));
    parts[key] = { value, canvas, total, color: getComputedStyle(document.documentElement).getPropertyValue(color).trim() };
  }
  const facts = el("div", { class: "facts" });
  const fact = {};
  for (const [key, label] of [["version", "Version"], ["uptime", "Uptime"], ["fsync", "fsync"],
    ["connections", "Connections"], ["topics", "Topics"], ["pending", "Pending"]]) {
    fact[key] = el("div", { class: "value", "data-fact": key, text: "–" });
    facts.append(el("div", { class: "fact" }, el("div", { class: "label", text: label }), fact[key]));
  }
  const topics = topicsTable();
  const view = el("div", {}, el("h1", { text: "Overview" }), cards, facts,
    el("h2", {}, "Topics"), topics.node);
  return {
    node: view,
    async update() {
      for (const [key] of series) {
        const r = rates(key);
        parts[key].value.textContent = r.length ? rate(r[r.length - 1]) : "–";
        parts[key].total.textContent = overview ? num(overview[key]) + " total" : "";
        drawChart(parts[key].canvas, r, parts[key].color);
      }
      if (overview) {
        fact.version.textContent = overview.version;
        fact.uptime.textContent = age(overview.uptime_ms);
        fact.fsync.textContent = overview.fsync;
        fact.connections.textContent = num(overview.connections);
        fact.topics.textContent = num(overview.topics);
      }
      const stats = await api("/topics");
      let pending = 0;
      for (const t of Object.values(stats.topics)) pending += t.pending;
      fact.pending.textContent = num(pending);
      topics.fill(stats);
    },
  };
}

function topicsTable() {
  const t = table(["Topic", "#Subscribers", "#Pending", "#In flight", "#Delayed", "#Published", "#Redelivered", "#Dead-lettered"]);
  t.node.setAttribute("data-testid", "topics");
  return {
    node: t.node,
    fill(stats) {
      const names = Object.keys(stats.topics).sort();
      fillRows(t.tbody, names.map((name) => {
        const s = stats.topics[name];
        const r = row(tdLink(name, "#/topics/" + enc(name)), tdNum(s.subscribers), tdNum(s.pending),
          tdNum(s.in_flight), tdNum(s.delayed), tdNum(s.published), tdNum(s.redelivered), tdNum(s.dead_lettered));
        r.setAttribute("data-topic", name);
        return r;
      }), 8, "No topics yet. Publish an event (the Publish page, or `herald pub TOPIC …`) or create one with `herald create TOPIC`.");
    },
  };
}

function topicsView() {
  const topics = topicsTable();
  return {
    node: el("div", {}, el("h1", { text: "Topics" }), topics.node),
    async update() { topics.fill(await api("/topics")); },
  };
}

function topicView(name) {
  const facts = el("div", { class: "facts" });
  const fact = {};
  for (const [key, label] of [["subscribers", "Subscribers"], ["pending", "Pending"], ["in_flight", "In flight"],
    ["delayed", "Delayed"], ["published", "Published"], ["dead_lettered", "Dead-lettered"]]) {
    fact[key] = el("div", { class: "value", "data-fact": key, text: "–" });
    facts.append(el("div", { class: "fact" }, el("div", { class: "label", text: label }), fact[key]));
  }
  const subs = table(["Subscription", "Kind", "#Members", "#Pending", "#In flight", "#Delayed", "#Oldest", "Options"]);
  subs.node.setAttribute("data-testid", "subscriptions");
  const select = el("select", { "aria-label": "subscription to peek" });
  const count = el("input", { type: "number", min: "1", max: "1000", value: "10", style: "width:6rem" });
  const out = el("pre", { class: "events", "data-testid": "peek" }, "Choose a durable subscription or a group, then Peek.");
  const peek = async () => {
    const v = select.value;
    if (!v) { out.textContent = "This topic has no durable subscription or group to peek at."; return; }
    const [kind, sub] = v.split(":", 2);
    try {
      const events = await api("/topics/" + enc(name) + "/peek?" + kind + "=" + enc(sub) + "&n=" + enc(count.value));
      out.textContent = events.length ? events.map((e) => JSON.stringify(e)).join("\n") : "(the queue is empty)";
    } catch (e) { out.textContent = "peek failed: " + e.message; }
  };
  const peekForm = el("div", { class: "row" }, select, count, el("button", { type: "button", onclick: peek }, "Peek"));
  const missing = el("p", { class: "empty", hidden: "" }, "No topic named ", el("code", { text: name }), ".");
  const body = el("div", {}, facts, el("h2", { text: "Subscriptions" }), subs.node,
    el("h2", { text: "Peek" }), peekForm, el("p", {}), out,
    el("p", {}, el("a", { href: "#/publish/" + enc(name) }, "Publish to " + name + " →")));
  let known = "";
  return {
    node: el("div", {}, el("h1", {}, el("span", { class: "muted", text: "Topic " }), el("code", { text: name })), missing, body),
    async update() {
      let t;
      try { t = await api("/topics/" + enc(name)); } catch (e) {
        if (e.status === 404) { missing.hidden = false; body.hidden = true; return; }
        throw e;
      }
      missing.hidden = true; body.hidden = false;
      for (const key of Object.keys(fact)) fact[key].textContent = num(t[key]);
      const list = t.subscriptions || [];
      fillRows(subs.tbody, list.map((s) => {
        const kind = s.group !== undefined ? "group" : s.name && s.name.startsWith("~") ? "anonymous" : "durable";
        return row(td(s.group !== undefined ? s.group : s.name, "name"), td(kind), tdNum(s.members), tdNum(s.pending),
          tdNum(s.in_flight), tdNum(s.delayed), el("td", { class: "num", text: age(s.oldest_ms) }),
          el("td", { class: "mono", title: s.options || "", text: s.options || "–" }));
      }), 8, "No subscriptions. Start one with `herald sub " + name + " --name NAME`.");
      // The peek choices change only when subscriptions come or go: keep the selection.
      const choices = list.filter((s) => s.group !== undefined || (s.name && !s.name.startsWith("~")))
        .map((s) => (s.group !== undefined ? "group:" + s.group : "sub:" + s.name));
      if (choices.join() !== known) {
        known = choices.join();
        const was = select.value;
        select.replaceChildren(...choices.map((c) => el("option", { value: c, text: c.replace(":", " ") })));
        if (choices.includes(was)) select.value = was;
      }
    },
  };
}

function publishView(topic) {
  const idValue = () => "console-" + Date.now().toString(36);
  const f = {
    topic: el("input", { type: "text", name: "topic", required: "", value: topic || "", placeholder: "orders" }),
    id: el("input", { type: "text", name: "id", required: "", value: idValue() }),
    priority: el("input", { type: "number", name: "priority", min: "0", max: "255", value: "0" }),
    msg: el("textarea", { name: "msg", placeholder: "hello, or JSON with the box below ticked" }),
    json: el("input", { type: "checkbox", name: "json" }),
  };
  const result = el("div", { class: "result", "data-testid": "publish-result", "aria-live": "polite" });
  const submit = async (ev) => {
    ev.preventDefault();
    let msg = f.msg.value;
    if (f.json.checked) {
      try { msg = JSON.parse(msg); } catch (e) { result.className = "result err"; result.textContent = "msg is not JSON: " + e.message; return; }
    }
    const event = { id: f.id.value, priority: Number(f.priority.value), msg };
    try {
      const r = await api("/topics/" + enc(f.topic.value.trim()) + "/events", {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(event),
      });
      result.className = "result ok";
      result.textContent = r.result + " " + f.topic.value.trim() + " " + r.id;
      f.id.value = idValue();
      poll();
    } catch (e) {
      result.className = "result err";
      result.textContent = (e.code ? e.code + ": " : "") + e.message;
    }
  };
  const form = el("form", { class: "stack", "data-testid": "publish", onsubmit: submit },
    el("label", { text: "Topic" }), f.topic,
    el("label", { text: "Id" }), f.id,
    el("label", { text: "Priority" }), f.priority,
    el("label", { text: "Message" }), f.msg,
    el("span"), el("label", { class: "row" }, f.json, "Send the message as JSON"),
    el("span"), el("div", { class: "row" }, el("button", { type: "submit" }, "Publish"), result));
  return {
    node: el("div", {}, el("h1", { text: "Publish" }),
      el("p", { class: "muted" }, "Publishes one event as ", el("code", { text: "pub" }),
        " does (the topic is created if it does not exist; the same id twice is a duplicate)."), form),
    async update() {},
  };
}

function connectionsView() {
  const t = table(["Id", "Peer", "Name", "Subscriptions", "#In flight", "#Bytes in", "#Bytes out", "Connected"]);
  t.node.setAttribute("data-testid", "connections");
  return {
    node: el("div", {}, el("h1", { text: "Connections" }), t.node),
    async update() {
      const list = await api("/connections");
      list.sort((a, b) => a.id - b.id);
      fillRows(t.tbody, list.map((c) => row(el("td", { class: "mono", text: String(c.id) }), td(c.peer, "mono"),
        td(c.name || "–"), el("td", { title: c.subscriptions.join(", "), text: c.subscriptions.join(", ") || "–" }),
        tdNum(c.in_flight), tdNum(c.bytes_in), tdNum(c.bytes_out),
        el("td", { class: "num", text: age(Date.now() - c.since_ms) })),
      ), 8, "No client is connected over the protocol.");
    },
  };
}

// ---------- routing and polling

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  let name = "overview", view;
  if (parts[0] === "topics" && parts[1]) { name = "topics"; view = topicView(parts.slice(1).join("/")); }
  else if (parts[0] === "topics") { name = "topics"; view = topicsView(); }
  else if (parts[0] === "publish") { name = "publish"; view = publishView(parts[1]); }
  else if (parts[0] === "connections") { name = "connections"; view = connectionsView(); }
  else view = overviewView();
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === name);
  document.getElementById("view").replaceChildren(view.node);
  current = view;
  poll();
}

async function poll() {
  clearTimeout(timer);
  const view = current;
  try {
    overview = await api("/overview");
    // A poll run early (after a publish) adds no sample: rates need about
    // a second between samples to be smooth.
    const now = performance.now();
    if (samples.length === 0 || now - samples[samples.length - 1].t >= POLL_MS / 2) {
      samples.push({ t: now, published: overview.published, delivered: overview.delivered, acked: overview.acked });
      if (samples.length > HISTORY) samples.shift();
    }
    document.getElementById("meta").textContent =
      "v" + overview.version + " · up " + age(overview.uptime_ms) + " · " + location.host;
    if (view === current) await view.update();
    failures = 0;
    banner(null);
  } catch (e) {
    failures += 1;
    banner(e.status
      ? "The server answered " + e.status + (e.code ? " " + e.code : "") + ": " + e.message
      : "Cannot reach Herald at " + location.host + " (" + e.message + "). Retrying every second…");
  }
  // Polls started early overlap the scheduled one: whichever ends last
  // leaves the single timer.
  clearTimeout(timer);
  timer = setTimeout(poll, POLL_MS);
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
