"""The status page: one self-contained HTML file (no third-party code) that polls /status every 2 s.

Chinese by default with an English toggle (remembered in localStorage; ``?lang=en`` in the URL); a banner
while alarms are active; node, sink and alarm tables. It reads only /status, so it shows what
`sitewatch status` shows.
"""

from __future__ import annotations

import json

from gateway.deliver.notify_text import alarm_names
from gateway.profiles.kinds import LANGUAGES, kind_label, kind_profiles

TEMPLATE = """<!doctype html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sitewatch</title>
<style>
body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 0; background: #f4f5f7; color: #222; }
header { background: #1f3a5f; color: #fff; padding: 10px 16px; display: flex; justify-content: space-between;
         align-items: center; }
header h1 { font-size: 18px; margin: 0; }
button { font-size: 14px; padding: 4px 10px; }
main { padding: 12px 16px; }
#banner { display: none; background: #c62828; color: #fff; padding: 10px 16px; font-weight: bold; }
#banner.prewarning { background: #ef8f00; }
section { background: #fff; border-radius: 6px; padding: 8px 12px; margin-bottom: 12px; overflow-x: auto; }
h2 { font-size: 16px; margin: 4px 0 8px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #eee; white-space: nowrap; }
.bad { color: #c62828; font-weight: bold; } .ok { color: #2e7d32; }
#summary span { margin-right: 16px; }
#charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 8px; }
#charts figure { margin: 0; min-width: 0; }
#charts svg { display: block; max-width: 100%; height: auto; }
#charts svg.rose { max-width: 300px; margin: 0 auto; }
</style>
</head>
<body>
<header><h1 data-t="title"></h1><button id="lang" type="button"></button></header>
<div id="banner" role="alert"></div>
<main>
<section id="summary"></section>
<section><h2 data-t="charts"></h2><div id="charts"></div></section>
<section><h2 data-t="nodes"></h2><table id="nodes"></table></section>
<section><h2 data-t="alarms"></h2>
<p><label><span data-t="who"></span> <input id="who" maxlength="40" autocomplete="name"></label>
<span id="ack-note" class="bad"></span></p>
<table id="alarms"></table></section>
<section id="spray" hidden><h2 data-t="spray"></h2>
<p><label><span data-t="token"></span> <input id="token" type="password" autocomplete="current-password"></label>
<span id="spray-note"></span></p>
<table id="spray-nodes"></table></section>
<section><h2 data-t="sinks"></h2><table id="sinks"></table></section>
</main>
<script>
"use strict";
const WORDS = {
  zh: {title: "工地监测网关", nodes: "测点", alarms: "当前报警", sinks: "数据上传", lang: "English",
       online: "在线", offline: "离线", node: "测点", kind: "类型", state: "状态", seen: "最后通信",
       latency: "延迟", values: "数值", alarm: "报警", severity: "级别", since: "开始时间", none: "无",
       sink: "去向", backlog: "积压", oldest: "最早积压", up: "正常", down: "异常", clock: "时钟",
       valid: "正常", invalid: "未同步", uptime: "运行", prewarning: "预警", alarmlevel: "报警",
       banner: "报警：", site: "工地", error: "无法连接网关", charts: "近30分钟曲线",
       who: "确认人：", ack: "确认", acked: "已确认", by: "确认人", needname: "请先填写确认人姓名",
       spray: "喷淋控制", token: "控制口令：", on: "开", off: "关", auto: "自动", needtoken: "请先填写控制口令",
       siren: "声光报警器", sirenon: "开", sirenoff: "关"},
  en: {title: "Site monitoring gateway", nodes: "Nodes", alarms: "Active alarms", sinks: "Uplinks", lang: "中文",
       online: "online", offline: "OFFLINE", node: "node", kind: "kind", state: "state", seen: "last seen",
       latency: "latency", values: "values", alarm: "alarm", severity: "severity", since: "since", none: "none",
       sink: "sink", backlog: "backlog", oldest: "oldest", up: "up", down: "DOWN", clock: "clock",
       valid: "valid", invalid: "NOT VALID", uptime: "up", prewarning: "pre-warning", alarmlevel: "ALARM",
       banner: "ALARM: ", site: "site", error: "cannot reach the gateway",
       charts: "Last 30 minutes", who: "Your name:", ack: "Acknowledge", acked: "acknowledged",
       by: "by", needname: "enter your name first", spray: "Spray control", token: "Control token:",
       on: "on", off: "off", auto: "auto", needtoken: "enter the control token first",
       siren: "siren", sirenon: "ON", sirenoff: "off"}
};
const ALARM_NAMES = __ALARM_NAMES__;
function alarmName(a) { return ALARM_NAMES[lang][a] || a; }
const KIND_NAMES = __KIND_NAMES__;
function kindName(k) { return KIND_NAMES[lang][k] || k; }
let lang = new URLSearchParams(location.search).get("lang") || localStorage.getItem("sitewatch-lang") || "zh";
if (!WORDS[lang]) lang = "zh";
let last = null;
let alarmsShown = "";
let sprayShown = "";
function w(key) { return WORDS[lang][key]; }
const ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"};
function esc(s) { return String(s).replace(/[&<>"]/g, c => ENTITIES[c]); }
function age(s) { return s === null ? "-" : s < 60 ? s.toFixed(1) + " s" : s < 3600 ? (s / 60).toFixed(0) + " min"
                  : (s / 3600).toFixed(1) + " h"; }
function row(cells, tag) {
  const t = tag || "td";
  return "<tr>" + cells.map(c => "<" + t + ">" + c + "</" + t + ">").join("") + "</tr>";
}
function sev(s) { return s === "alarm" ? w("alarmlevel") : w("prewarning"); }
function render() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-t]").forEach(e => { e.textContent = w(e.dataset.t); });
  document.getElementById("lang").textContent = w("lang");
  const st = last;
  if (!st) return;
  const banner = document.getElementById("banner");
  if (st.alarms.length) {
    banner.style.display = "block";
    banner.className = st.alarms.some(a => a.severity === "alarm") ? "" : "prewarning";
    banner.textContent = w("banner") +
      st.alarms.map(a => sev(a.severity) + " " + alarmName(a.alarm) + " @ " + a.node +
        (a.acknowledged ? " (" + w("acked") + ")" : "")).join(", ");
  } else { banner.style.display = "none"; }
  document.getElementById("summary").innerHTML =
    "<span>" + w("site") + ": <b>" + esc(st.site) + "</b></span><span>" + w("nodes") + ": <b>" + st.nodes_online +
    "/" + st.nodes_total + "</b></span><span>" + w("clock") + ": <b class='" + (st.clock.valid ? "ok" : "bad") + "'>" +
    w(st.clock.valid ? "valid" : "invalid") + "</b></span><span>" + w("uptime") + ": " + age(st.uptime_s) + "</span>" +
    (st.siren ? "<span>" + w("siren") + ": <b class='" + (st.siren.on ? "bad'>" + w("sirenon") : "ok'>" +
      w("sirenoff")) + "</b></span>" : "");
  document.getElementById("nodes").innerHTML = row([w("node"), w("kind"), w("state"), w("seen"), w("latency"),
    w("values")], "th") + st.nodes.map(n => row([esc(n.name), esc(kindName(n.kind)),
    n.online ? "<span class='ok'>" + w("online") + "</span>" : "<span class='bad'>" + w("offline") + "</span>",
    age(n.last_seen_age_s), n.latency_ms === null ? "-" : n.latency_ms.toFixed(0) + " ms",
    (n.readings || []).map(r => esc(r.channel) + " " + (r.value === null ? "-" : r.value.toFixed(1)) + " " +
      esc(r.unit) + (r.quality === "N" ? "" : " [" + esc(r.quality) + "]")).join("; ")])).join("");
  // Replaced only when it changed: a button swapped between mouse-down and mouse-up would lose the click.
  const alarmsHtml = st.alarms.length ? row([w("alarm"), w("severity"), w("node"),
    w("since"), w("acked")], "th") + st.alarms.map((a, i) => row([esc(alarmName(a.alarm)),
    "<span class='bad'>" + sev(a.severity) + "</span>",
    esc(a.node + "/" + a.channel), new Date(a.since * 1000).toLocaleString(),
    a.acknowledged ? "<span class='acked'>" + w("acked") + ", " + w("by") + " " + esc(a.acknowledged.by) + " " +
      new Date(a.acknowledged.at * 1000).toLocaleTimeString() + "</span>"
    : "<button type='button' class='ack' data-i='" + i + "'>" + w("ack") + "</button>"])).join("")
    : row([w("none")]);
  document.getElementById("spray").hidden = !st.spray_control;
  const sprayHtml = st.nodes.filter(n => n.spray).map(n => row([esc(n.name)].concat(
    ["on", "off", "auto"].map(m => "<button type='button' class='spray' data-node='" + esc(n.name) + "' data-mode='" +
      m + "'>" + w(m) + "</button>")))).join("");
  if (sprayShown !== sprayHtml) { document.getElementById("spray-nodes").innerHTML = sprayShown = sprayHtml; }
  if (alarmsShown !== alarmsHtml) { document.getElementById("alarms").innerHTML = alarmsShown = alarmsHtml; }
  document.getElementById("sinks").innerHTML = row([w("sink"), w("backlog"), w("oldest"), w("state")], "th") +
    st.sinks.map(s => row([esc(s.name), s.backlog === null ? "?" : s.backlog, age(s.oldest_age_s),
    s.up ? "<span class='ok'>" + w("up") + "</span>" : "<span class='bad'>" + w("down") + "</span>"])).join("");
}
async function refresh() {
  try {
    const answer = await fetch("/status", {cache: "no-store"});
    last = await answer.json();
    document.body.dataset.loaded = "1";
  } catch (e) {
    document.getElementById("summary").textContent = w("error");
  }
  render();
}
async function refreshCharts() {
  // The SVG is drawn by the gateway (gateway/ops/charts.py), its text escaped there.
  try {
    const answer = await fetch("/charts?lang=" + lang, {cache: "no-store"});
    const charts = (await answer.json()).charts;
    document.getElementById("charts").innerHTML = charts.map(c => "<figure data-chart='" + esc(c.id) + "'>" +
      c.svg + "</figure>").join("");
    document.body.dataset.charts = String(charts.length);
  } catch (e) { /* the summary already says the gateway cannot be reached */ }
}
// Acknowledge: a POST of the alarm's identity and who acknowledges; the gateway records it (gateway/ops/acks.py).
document.getElementById("who").value = localStorage.getItem("sitewatch-who") || "";
document.getElementById("alarms").addEventListener("click", async ev => {
  const button = ev.target.closest("button.ack");
  if (!button || !last) return;
  const a = last.alarms[Number(button.dataset.i)];
  const who = document.getElementById("who").value.trim();
  const note = document.getElementById("ack-note");
  if (!who) { note.textContent = w("needname"); document.getElementById("who").focus(); return; }
  localStorage.setItem("sitewatch-who", who);
  button.disabled = true;
  try {
    const answer = await fetch("/alarms/ack", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({alarm: a.alarm, node: a.node, channel: a.channel, since: a.since, by: who})});
    const result = await answer.json();
    note.textContent = result.ok ? "" : result.error;
  } catch (e) { note.textContent = w("error"); }
  await refresh();
});
// Spray: a JSON POST with the control token in a header (no cross-site page can send one); the gateway
// applies it as it applies the platform's spray command (gateway/ops/status_server.py).
document.getElementById("token").value = sessionStorage.getItem("sitewatch-token") || "";
document.getElementById("spray-nodes").addEventListener("click", async ev => {
  const button = ev.target.closest("button.spray");
  if (!button) return;
  const note = document.getElementById("spray-note");
  const token = document.getElementById("token").value.trim();
  if (!token) { note.className = "bad"; note.textContent = w("needtoken"); return; }
  sessionStorage.setItem("sitewatch-token", token);
  note.className = ""; note.textContent = "…";
  try {
    const answer = await fetch("/spray", {method: "POST", headers: {"Content-Type": "application/json",
      "Authorization": "Bearer " + token},
      body: JSON.stringify({node: button.dataset.node, mode: button.dataset.mode})});
    const result = await answer.json();
    note.className = result.ok ? "ok" : "bad";
    note.textContent = button.dataset.node + " " + w(button.dataset.mode) + ": " +
      (result.ok ? (result.result.writes || []).join(", ") || result.message : (result.message || result.error));
  } catch (e) { note.className = "bad"; note.textContent = w("error"); }
});
document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("sitewatch-lang", lang); render(); refreshCharts();
});
render();
refresh();
refreshCharts();
setInterval(refresh, 2000);
setInterval(refreshCharts, 10000);
</script>
</body>
</html>
"""


def page() -> str:
    """The page, with the alarms' names as the notifications word them and the kinds' names, in both languages,
    from the kind profiles known now (a kind installed from a folder included)."""
    alarms = {language: alarm_names(language) for language in LANGUAGES}
    kinds = {language: {kind: kind_label(kind, language) for kind in kind_profiles()} for language in LANGUAGES}
    return (TEMPLATE.replace("__ALARM_NAMES__", json.dumps(alarms, ensure_ascii=False))
            .replace("__KIND_NAMES__", json.dumps(kinds, ensure_ascii=False)))
