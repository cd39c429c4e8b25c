/* The live QR of the e-card page. Vanilla JavaScript, no dependency, nothing inline (the
   page's CSP forbids it), no innerHTML: the code is drawn as SVG from the module rows the
   server made of the token.

   - fetches a token at once, then again every `refresh_after` seconds, with a countdown;
   - hides the code (and shows why) when offline, when the card is not active, when the page
     is in the background (visibilitychange) and when the token would expire before a new
     one arrived; shows a fresh one when the page comes back or the network returns;
   - stops refreshing after `data-idle` seconds without a touch (longer in elder mode), so a
     phone left on a table does not keep a session alive. */
(function () {
  "use strict";
  var box = document.getElementById("qr");
  if (!box) { return; }
  var SVG = "http://www.w3.org/2000/svg";
  var code = document.getElementById("qr-code");
  var countdown = document.getElementById("qr-countdown");
  var resume = document.getElementById("qr-resume");
  var endpoint = box.getAttribute("data-endpoint");
  var csrf = box.getAttribute("data-csrf");
  var template = box.getAttribute("data-countdown") || "{s}";
  var idleAfter = 1000 * (parseInt(box.getAttribute("data-idle"), 10) || 300);
  var expiresAt = 0, refreshAt = 0, lastTouch = Date.now();
  var refreshTimer = null, tickTimer = null, busy = false;

  function stopTimers() {
    if (refreshTimer) { clearTimeout(refreshTimer); refreshTimer = null; }
    if (tickTimer) { clearInterval(tickTimer); tickTimer = null; }
  }

  function show(state) {
    var states = box.querySelectorAll(".qr-state");
    for (var i = 0; i < states.length; i++) {
      states[i].hidden = states[i].id !== "qr-" + state;
    }
    var visible = state === "code";
    code.hidden = !visible;
    countdown.hidden = !visible;
    if (!visible) {
      stopTimers();
      while (code.firstChild) { code.removeChild(code.firstChild); }
      expiresAt = 0;
    }
  }

  function maxSize() {
    var css = getComputedStyle(document.documentElement).getPropertyValue("--qr-max");
    return parseInt(css, 10) || 264;
  }

  function draw(rows) {
    var n = rows.length;
    var room = Math.min(box.clientWidth || maxSize(), maxSize());
    var scale = Math.max(2, Math.floor(room / n));
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("width", String(scale * n));
    svg.setAttribute("height", String(scale * n));
    svg.setAttribute("viewBox", "0 0 " + n + " " + n);
    svg.setAttribute("shape-rendering", "crispEdges");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var light = document.createElementNS(SVG, "rect");
    light.setAttribute("width", String(n));
    light.setAttribute("height", String(n));
    light.setAttribute("fill", "#ffffff");
    svg.appendChild(light);
    var d = [];
    for (var y = 0; y < n; y++) {
      var row = rows[y];
      for (var x = 0; x < row.length; x++) {
        if (row.charAt(x) !== "1") { continue; }
        var run = 1;
        while (x + run < row.length && row.charAt(x + run) === "1") { run++; }
        d.push("M" + x + " " + y + "h" + run + "v1h-" + run + "z");
        x += run - 1;
      }
    }
    var dark = document.createElementNS(SVG, "path");
    dark.setAttribute("d", d.join(""));
    dark.setAttribute("fill", "#000000");
    svg.appendChild(dark);
    while (code.firstChild) { code.removeChild(code.firstChild); }
    code.appendChild(svg);
  }

  function tick() {
    var now = Date.now();
    if (expiresAt && now >= expiresAt) { show("failed"); return; }
    if (now - lastTouch > idleAfter) { show("idle"); return; }
    var left = Math.max(0, Math.ceil((refreshAt - now) / 1000));
    countdown.textContent = template.replace("{s}", String(left));
  }

  function later(seconds) {
    stopTimers();
    refreshTimer = setTimeout(refresh, Math.max(1, seconds) * 1000);
  }

  function refresh() {
    if (busy || document.hidden) { return; }
    if (navigator.onLine === false) { show("offline"); return; }
    if (Date.now() - lastTouch > idleAfter) { show("idle"); return; }
    busy = true;
    fetch(endpoint, {
      method: "GET",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
    }).then(function (response) {
      return response.json().then(function (body) { return { status: response.status, body: body }; });
    }).then(function (answer) {
      busy = false;
      var body = answer.body || {};
      if (answer.status === 200 && body.state === "ok") {
        draw(body.modules);
        show("code");
        expiresAt = 1000 * body.expires_at;
        refreshAt = Date.now() + 1000 * body.refresh_after;
        tick();
        tickTimer = setInterval(tick, 1000);
        later(body.refresh_after);
        return;
      }
      show(body.state && document.getElementById("qr-" + body.state) ? body.state : "failed");
      if (answer.status === 429 || answer.status >= 500) { later(body.retry_after || 5); }
    }).catch(function () {
      busy = false;
      show(navigator.onLine === false ? "offline" : "failed");
      later(5);
    });
  }

  function touched() {
    var wasIdle = Date.now() - lastTouch > idleAfter;
    lastTouch = Date.now();
    if (wasIdle && !document.hidden) { show("loading"); refresh(); }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { show("hidden"); return; }
    show("loading");
    refresh();
  });
  window.addEventListener("offline", function () { show("offline"); });
  window.addEventListener("online", function () { show("loading"); refresh(); });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { show("loading"); refresh(); }
  });
  ["pointerdown", "keydown", "touchstart"].forEach(function (name) {
    document.addEventListener(name, touched, { passive: true });
  });
  if (resume) { resume.addEventListener("click", touched); }
  refresh();
}());
