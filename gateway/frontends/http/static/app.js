/* gx-gateway MFD app: plain ES5 for the old WebKit in chart plotters (no modules, no arrow
 * functions, no let/const, no template strings, no fetch). Live values over /ws (snapshot then
 * changes), reconnecting with backoff; controls write through POST /api/v1/write after a
 * confirm step, and a refusal is shown with the gateway's reason. Invalid values show "--". */
(function () {
  "use strict";
  var SERVICES = "system,vebus,battery,solarcharger,pvinverter,grid,tank,temperature,digitalinput,settings";
  var values = {};   /* "battery/512" -> {path: value} */
  var labels = {};   /* service type -> path -> {value: label} */
  var ws = null, backoff = 1000, connected = false, dirty = false, pointerDown = false, pending = null;
  var MODES = [[3, "On"], [4, "Off"], [1, "Charger only"], [2, "Inverter only"]];

  function $(id) { return document.getElementById(id); }
  function esc(s) { return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;"); }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmt(v, digits, unit) {
    if (!isNum(v)) { return "--"; }
    return v.toFixed(digits) + (unit ? " " + unit : "");
  }
  function duration(s) {
    if (!isNum(s) || s < 0) { return "--"; }
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h > 99 ? "> 99 h" : h + " h " + (m < 10 ? "0" : "") + m + " min";
  }
  function label(service, path, v) {
    if (v === null || v === undefined) { return "--"; }
    var l = labels[service] && labels[service][path] && labels[service][path][String(v)];
    return l ? l : String(v);
  }
  function devices(service) {
    var out = [], k;
    for (k in values) {
      if (values.hasOwnProperty(k) && k.split("/")[0] === service) { out.push(k); }
    }
    out.sort(function (a, b) { return Number(a.split("/")[1]) - Number(b.split("/")[1]); });
    return out;
  }
  function get(key, path) {
    var d = values[key];
    return d && d.hasOwnProperty(path) ? d[path] : null;
  }
  function first(service) { var d = devices(service); return d.length ? d[0] : null; }
  function name(key) {
    var n = get(key, "/CustomName") || get(key, "/ProductName");
    return n ? String(n) : key;
  }
  function row(k, v, id) {
    return '<div class="row"><span class="k">' + esc(k) + '</span><span class="v"' + (id ? ' id="' + id + '"' : "") + ">" + esc(v) + "</span></div>";
  }
  function bar(pct, low) {
    var w = isNum(pct) ? Math.max(0, Math.min(100, pct)) : 0;
    return '<div class="bar' + (low ? " low" : "") + '"><div style="width:' + w.toFixed(1) + '%"></div></div>';
  }
  function button(text, action, attrs) {
    return '<button type="button" data-action="' + action + '"' + (attrs || "") + ">" + esc(text) + "</button>";
  }
  function sum(list) {
    var total = null, i;
    for (i = 0; i < list.length; i++) { if (isNum(list[i])) { total = (total === null ? 0 : total) + list[i]; } }
    return total;
  }
  function allPhases(key, fmtPaths) {  /* every L1-L3 value of every path pattern, as a list to sum */
    var out = [], i, j;
    for (j = 0; j < fmtPaths.length; j++) {
      for (i = 1; i <= 3; i++) { out.push(get(key, fmtPaths[j].replace("#", "L" + i))); }
    }
    return out;
  }
  function phases(key, fmtPath) {
    var out = [], i, p;
    for (i = 1; i <= 3; i++) {
      p = get(key, fmtPath.replace("#", "L" + i));
      if (i === 1 || isNum(p)) { out.push(["L" + i, p]); }
    }
    return out;
  }

  /* --- cards --------------------------------------------------------------------------- */
  function cardBattery() {
    var s = first("system") || "system/0", soc = get(s, "/Dc/Battery/Soc");
    return "<h2>Battery</h2>" +
      '<div class="big" id="bat-soc">' + esc(fmt(soc, 1, "%")) + "</div>" + bar(soc, isNum(soc) && soc < 20) +
      row("Voltage", fmt(get(s, "/Dc/Battery/Voltage"), 2, "V"), "bat-v") +
      row("Current", fmt(get(s, "/Dc/Battery/Current"), 1, "A"), "bat-a") +
      row("Power", fmt(get(s, "/Dc/Battery/Power"), 0, "W"), "bat-w") +
      row("State", label("system", "/Dc/Battery/State", get(s, "/Dc/Battery/State")), "bat-state") +
      row("Time to go", duration(get(s, "/Dc/Battery/TimeToGo")), "bat-ttg") + batteryList();
  }
  function batteryList() {  /* more than one battery monitor (a SmartShunt over Bluetooth, N2K ones): each */
    var list = devices("battery"), html = "", i;
    if (list.length < 2) { return ""; }
    for (i = 0; i < list.length; i++) {
      html += row(name(list[i]), fmt(get(list[i], "/Soc"), 0, "%") + "  " + fmt(get(list[i], "/Dc/0/Voltage"), 2, "V"),
        "bat-" + list[i].replace("/", "-"));
    }
    return html;
  }
  function cardInverter() {
    var v = first("vebus");
    if (!v) { return "<h2>Inverter/charger</h2><div class=\"muted\">none</div>"; }
    var mode = get(v, "/Mode");
    return "<h2>" + esc(name(v)) + "</h2>" +
      '<div class="mid" id="inv-state">' + esc(label("vebus", "/State", get(v, "/State"))) + "</div>" +
      row("Mode", label("vebus", "/Mode", mode), "inv-mode") +
      row("Output", fmt(sum(allPhases(v, ["/Ac/Out/#/P"])), 0, "W"), "inv-out") +
      '<div class="ctl">' + button("Mode…", "mode", ' id="btn-mode" data-key="' + v + '"') + "</div>";
  }
  function cardSolar() {
    var s = first("system") || "system/0", html = "<h2>Solar</h2>", i, list = devices("solarcharger"), pv = devices("pvinverter");
    var ac = sum(allPhases(s, ["/Ac/PvOnGrid/#/Power", "/Ac/PvOnOutput/#/Power", "/Ac/PvOnGenset/#/Power"]));
    var total = sum([get(s, "/Dc/Pv/Power"), ac]);
    html += '<div class="big" id="pv-total">' + esc(fmt(total, 0, "W")) + "</div>";
    for (i = 0; i < list.length; i++) { html += row(name(list[i]), fmt(get(list[i], "/Yield/Power"), 0, "W"), "pv-" + list[i].replace("/", "-")); }
    for (i = 0; i < pv.length; i++) {
      html += row(name(pv[i]), fmt(get(pv[i], "/Ac/Power"), 0, "W"));
      if (get(pv[i], "/Ac/PowerLimit") !== null) {
        html += '<div class="ctl">' + button("Power limit " + fmt(get(pv[i], "/Ac/PowerLimit"), 0, "W") + "…", "pvlimit", ' data-key="' + pv[i] + '"') + "</div>";
      }
    }
    return html;
  }
  function cardAcIn() {
    var s = first("system") || "system/0", v = first("vebus"), html = "<h2>AC input</h2>", ph, i;
    html += '<div class="mid" id="acin-source">' + esc(label("system", "/Ac/ActiveIn/Source", get(s, "/Ac/ActiveIn/Source"))) + "</div>";
    if (v) {
      ph = phases(v, "/Ac/ActiveIn/#/P");
      for (i = 0; i < ph.length; i++) { html += row(ph[i][0], fmt(ph[i][1], 0, "W")); }
      html += row("Current limit", fmt(get(v, "/Ac/ActiveIn/CurrentLimit"), 1, "A"), "acin-limit");
      html += '<div class="ctl">' + button("Limit…", "limit", ' id="btn-limit" data-key="' + v + '"') + "</div>";
    }
    return html;
  }
  function cardLoads() {
    var s = first("system") || "system/0", ph = phases(s, "/Ac/Consumption/#/Power"), i, html = "<h2>AC loads</h2>";
    html += '<div class="big" id="loads-total">' + esc(fmt(sum(allPhases(s, ["/Ac/Consumption/#/Power"])), 0, "W")) + "</div>";
    for (i = 0; i < ph.length; i++) { html += row(ph[i][0], fmt(ph[i][1], 0, "W")); }
    return html;
  }
  function cardGrid() {
    var g = first("grid"), s = first("system") || "system/0", html = "<h2>Grid</h2>", ph, i;
    if (g) {
      html += '<div class="big" id="grid-total">' + esc(fmt(get(g, "/Ac/Power"), 0, "W")) + "</div>";
      ph = phases(g, "/Ac/#/Power");
      for (i = 0; i < ph.length; i++) { html += row(ph[i][0], fmt(ph[i][1], 0, "W")); }
      return html;
    }
    ph = phases(s, "/Ac/Grid/#/Power");
    html += '<div class="big" id="grid-total">' + esc(fmt(sum([ph[0][1], ph[1] ? ph[1][1] : null, ph[2] ? ph[2][1] : null]), 0, "W")) + "</div>";
    return html + '<div class="muted">no grid meter; from the inverter/charger</div>';
  }
  function cardTanks() {
    var list = devices("tank"), html = "<h2>Tanks</h2>", i, lvl, fluid;
    if (!list.length) { return html + '<div class="muted">none</div>'; }
    for (i = 0; i < list.length; i++) {
      lvl = get(list[i], "/Level");
      fluid = label("tank", "/FluidType", get(list[i], "/FluidType"));
      html += row(name(list[i]) + (fluid === "--" || fluid === name(list[i]) ? "" : " (" + fluid + ")"), fmt(lvl, 0, "%"), "tank-" + list[i].replace("/", "-"));
      html += bar(lvl, isNum(lvl) && lvl < 15);
    }
    return html;
  }
  function cardTemps() {
    var list = devices("temperature"), html = "<h2>Temperatures</h2>", i;
    if (!list.length) { return html + '<div class="muted">none</div>'; }
    for (i = 0; i < list.length; i++) { html += row(name(list[i]), fmt(get(list[i], "/Temperature"), 1, "°C")); }
    return html;
  }
  function cardRelays() {
    var s = first("system") || "system/0", html = "<h2>Relays</h2>", i, st, any = false;
    for (i = 0; i < 2; i++) {
      st = get(s, "/Relay/" + i + "/State");
      if (st === null) { continue; }
      any = true;
      html += row("Relay " + (i + 1), st === 1 ? "On" : "Off", "relay-" + i) +
        '<div class="ctl">' + button(st === 1 ? "Switch off…" : "Switch on…", "relay", ' id="btn-relay-' + i + '" data-key="' + s + '" data-relay="' + i + '"' + (st === 1 ? "" : ' class="off"')) + "</div>";
    }
    return any ? html : html + '<div class="muted">none</div>';
  }
  var HUB4_MODES = { 1: "Phase compensation", 2: "Per phase", 3: "External control" };
  function cardEss() {
    var st = first("settings"), hub = first("hub4"), html = "<h2>ESS</h2>", mode, feed, override;
    if (!st) { return html + '<div class="muted">no settings</div>'; }
    mode = get(st, "/Settings/CGwacs/Hub4Mode");
    html += row("Mode", isNum(mode) ? (HUB4_MODES[mode] || "Off") : "--", "ess-mode");
    override = hub ? get(hub, "/Overrides/Setpoint") : null;
    html += row("Grid setpoint", fmt(isNum(override) ? override : get(st, "/Settings/CGwacs/AcPowerSetPoint"), 0, "W") + (isNum(override) ? " (scheduled)" : ""), "ess-setpoint");
    html += row("Minimum SOC", fmt(get(st, "/Settings/CGwacs/BatteryLife/MinimumSocLimit"), 0, "%"), "ess-minsoc");
    feed = get(st, "/Settings/CGwacs/MaxFeedInPower");
    html += row("Feed-in limit", get(st, "/Settings/CGwacs/PreventFeedback") === 1 ? "No PV feed-in" : (isNum(feed) && feed >= 0 ? fmt(feed, 0, "W") : "None"), "ess-feedin");
    if (hub) { html += row("PV limiter", get(hub, "/PvPowerLimiterActive") === 1 ? "Limiting" : "Idle", "ess-limiter"); }
    return html + '<div class="ctl">' + button("Minimum SOC…", "minsoc", ' id="btn-minsoc" data-key="' + st + '"') + "</div>";
  }
  var GEN_STATES = { 0: "Stopped", 1: "Running", 2: "Warm-up", 3: "Cool-down", 4: "Stopping", 10: "Error" };
  var GEN_REASONS = { 0: "", 1: "manual", 2: "test run", 3: "loss of communication", 4: "SOC", 5: "AC load", 6: "battery current", 7: "battery voltage", 8: "inverter temperature", 9: "inverter overload" };
  function cardGenerator() {
    var g = first("generator"), html = "<h2>Generator</h2>", st, why, manual;
    if (!g) { return html + '<div class="muted">none</div>'; }
    st = get(g, "/State");
    why = GEN_REASONS[get(g, "/RunningByConditionCode")] || "";
    html += row("State", isNum(st) ? (GEN_STATES[st] || "State " + st) + (st === 1 && why ? " (" + why + ")" : "") : "--", "gen-state");
    html += row("Run time", st === 1 ? duration(get(g, "/Runtime")) : "--", "gen-runtime");
    manual = get(g, "/ManualStart") === 1;
    return html + '<div class="ctl">' + button(manual ? "Stop…" : "Start…", "generator", ' id="btn-generator" data-key="' + g + '"' + (manual ? "" : ' class="off"')) + "</div>";
  }
  function cardAlarms() {
    var html = "<h2>Alarms</h2>", found = [], k, p, d, v;
    for (k in values) {
      if (!values.hasOwnProperty(k)) { continue; }
      d = values[k];
      for (p in d) {
        if (!d.hasOwnProperty(p)) { continue; }
        v = d[p];
        if ((p.indexOf("/Alarms/") === 0 || p === "/Alarm") && isNum(v) && v > 0) {
          found.push(name(k) + ": " + (p === "/Alarm" ? "alarm" : p.substring(8)) + (v >= 2 ? " (alarm)" : " (warning)"));
        }
      }
    }
    if (!found.length) { return html + '<div class="muted" id="alarms-none">No alarms</div>'; }
    for (k = 0; k < found.length; k++) { html += '<div class="alarm">' + esc(found[k]) + "</div>"; }
    return html;
  }
  var CARDS = [["card-battery", cardBattery], ["card-inverter", cardInverter], ["card-solar", cardSolar],
    ["card-acin", cardAcIn], ["card-loads", cardLoads], ["card-grid", cardGrid], ["card-tanks", cardTanks],
    ["card-temps", cardTemps], ["card-relays", cardRelays], ["card-ess", cardEss], ["card-generator", cardGenerator],
    ["card-alarms", cardAlarms]];
  var shown = {};

  function render() {
    var i, html;
    dirty = false;
    for (i = 0; i < CARDS.length; i++) {
      html = CARDS[i][1]();
      if (shown[CARDS[i][0]] !== html) { $(CARDS[i][0]).innerHTML = html; shown[CARDS[i][0]] = html; }
    }
  }
  function changed() {
    if (!dirty) { dirty = true; setTimeout(function () { if (!pointerDown) { render(); } else { dirty = false; changed(); } }, 150); }
  }

  /* --- live values ----------------------------------------------------------------------- */
  function status(text, cls) { var c = $("conn"); c.innerHTML = esc(text); c.className = cls; }
  function apply(msg) {
    var k, p, src = msg.values || {}, i;
    if (msg.type === "snapshot") { values = {}; }
    for (k in src) {
      if (!src.hasOwnProperty(k)) { continue; }
      if (!values[k]) { values[k] = {}; }
      for (p in src[k]) { if (src[k].hasOwnProperty(p)) { values[k][p] = src[k][p]; } }
    }
    if (msg.removed) { for (i = 0; i < msg.removed.length; i++) { delete values[msg.removed[i]]; } }
    changed();
  }
  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    try { ws = new WebSocket(url); } catch (e) { retry(); return; }
    ws.onopen = function () { backoff = 1000; connected = true; status("Live", "conn-ok"); $("lost").className = "hidden"; document.body.className = document.body.className.replace(" stale", ""); };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "snapshot" || msg.type === "changes") { apply(msg); }
    };
    ws.onclose = function () { ws = null; retry(); };
    ws.onerror = function () { if (ws) { ws.close(); } };
  }
  function retry() {
    if (connected || $("lost").className === "hidden") {
      connected = false;
      status("Offline", "conn-lost");
      $("lost").className = "";
      if (document.body.className.indexOf("stale") < 0) { document.body.className += " stale"; }
    }
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 30000);
  }
  function loadLabels() {
    var x = new XMLHttpRequest();
    x.open("GET", "/api/v1/paths?service=" + SERVICES, true);
    x.onreadystatechange = function () {
      var s, p, out;
      if (x.readyState !== 4) { return; }
      if (x.status !== 200) { setTimeout(loadLabels, 5000); return; }
      out = JSON.parse(x.responseText).services;
      for (s in out) {
        if (!out.hasOwnProperty(s)) { continue; }
        labels[s] = {};
        for (p in out[s]) { if (out[s].hasOwnProperty(p) && out[s][p].labels) { labels[s][p] = out[s][p].labels; } }
      }
      shown = {};
      changed();
    };
    x.send(null);
  }

  /* --- controls: choose, confirm, write ---------------------------------------------------- */
  function toast(text) {
    var t = $("toast");
    t.innerHTML = esc(text); t.className = "";
    setTimeout(function () { t.className = "hidden"; }, 3000);
  }
  function openDialog(title, body, write) {
    pending = write;
    $("dialog-title").innerHTML = esc(title);
    $("dialog-body").innerHTML = body;
    $("dialog-error").innerHTML = "";
    $("dialog-confirm").disabled = false;
    $("dialog").className = "";
  }
  function closeDialog() { pending = null; $("dialog").className = "hidden"; }
  function numberDialog(title, key, path, value, step, unit) {
    var v = isNum(value) ? value : 0;
    openDialog(title, '<button type="button" data-action="step" data-step="' + (-step) + '">−</button> ' +
      '<input id="dialog-number" type="number" step="' + step + '" value="' + esc(v) + '"> ' + esc(unit) +
      ' <button type="button" data-action="step" data-step="' + step + '">+</button>',
      function () { return { key: key, path: path, value: Number($("dialog-number").value) }; });
  }
  function modeDialog(key) {
    var cur = get(key, "/Mode"), body = "", i;
    for (i = 0; i < MODES.length; i++) {
      body += button(MODES[i][1], "pick", ' data-value="' + MODES[i][0] + '" id="mode-' + MODES[i][0] + '"' + (MODES[i][0] === cur ? "" : ' class="off"'));
    }
    openDialog("Inverter/charger mode", body, function () { return { key: key, path: "/Mode", value: pendingPick }; });
    pendingPick = cur;
  }
  var pendingPick = null;
  function send() {
    var w = pending && pending(), parts, x;
    if (!w || !isNum(w.value)) { $("dialog-error").innerHTML = "Choose a value first"; return; }
    parts = w.key.split("/");
    $("dialog-confirm").disabled = true;
    $("dialog-error").innerHTML = "Sending…";
    x = new XMLHttpRequest();
    x.open("POST", "/api/v1/write", true);
    x.setRequestHeader("Content-Type", "application/json");
    x.onreadystatechange = function () {
      var why;
      if (x.readyState !== 4) { return; }
      if (x.status === 200) { closeDialog(); toast("Done"); return; }
      try { why = JSON.parse(x.responseText).error; } catch (e) { why = "no answer from the gateway"; }
      $("dialog-confirm").disabled = false;
      $("dialog-error").innerHTML = esc("Refused: " + why);
    };
    x.send(JSON.stringify({ service: parts[0], instance: Number(parts[1]), path: w.path, value: w.value }));
  }
  function onAction(el) {
    var a = el.getAttribute("data-action"), key = el.getAttribute("data-key"), i, n, btns;
    if (a === "palette") {
      document.body.className = document.body.className.indexOf("night") >= 0 ? document.body.className.replace("night", "day") : document.body.className.replace("day", "night");
      el.innerHTML = document.body.className.indexOf("night") >= 0 ? "Day" : "Night";
      try { localStorage.setItem("palette", document.body.className.indexOf("night") >= 0 ? "night" : "day"); } catch (e) { /* private mode */ }
    } else if (a === "mode") { modeDialog(key);
    } else if (a === "pick") {
      pendingPick = Number(el.getAttribute("data-value"));
      btns = $("dialog-body").getElementsByTagName("button");
      for (i = 0; i < btns.length; i++) { btns[i].className = btns[i] === el ? "" : "off"; }
    } else if (a === "limit") { numberDialog("AC input current limit", key, "/Ac/ActiveIn/CurrentLimit", get(key, "/Ac/ActiveIn/CurrentLimit"), 1, "A");
    } else if (a === "minsoc") { numberDialog("ESS minimum SOC", key, "/Settings/CGwacs/BatteryLife/MinimumSocLimit", get(key, "/Settings/CGwacs/BatteryLife/MinimumSocLimit"), 5, "%");
    } else if (a === "pvlimit") { numberDialog("PV power limit", key, "/Ac/PowerLimit", get(key, "/Ac/PowerLimit"), 100, "W");
    } else if (a === "relay") {
      n = el.getAttribute("data-relay");
      var to = get(key, "/Relay/" + n + "/State") === 1 ? 0 : 1;
      openDialog("Switch relay " + (Number(n) + 1) + (to ? " on" : " off") + "?", "", function () { return { key: key, path: "/Relay/" + n + "/State", value: to }; });
    } else if (a === "generator") {
      var start = get(key, "/ManualStart") === 1 ? 0 : 1;
      openDialog(start ? "Start the generator?" : "Stop the generator?", "", function () { return { key: key, path: "/ManualStart", value: start }; });
    } else if (a === "step") {
      n = $("dialog-number");
      n.value = String((Number(n.value) || 0) + Number(el.getAttribute("data-step")));
    } else if (a === "cancel") { closeDialog();
    } else if (a === "confirm") { send(); }
  }
  document.addEventListener("click", function (ev) {
    var el = ev.target;
    while (el && el !== document && !(el.getAttribute && el.getAttribute("data-action"))) { el = el.parentNode; }
    if (el && el !== document) { onAction(el); }
  }, false);
  function down() { pointerDown = true; }
  function up() { pointerDown = false; }
  document.addEventListener("mousedown", down, false);
  document.addEventListener("touchstart", down, false);
  document.addEventListener("mouseup", up, false);
  document.addEventListener("touchend", up, false);

  try { if (localStorage.getItem("palette") === "night") { document.body.className = "night"; $("palette").innerHTML = "Day"; } } catch (e) { /* none */ }
  render();
  loadLabels();
  connect();
}());
