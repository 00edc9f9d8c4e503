// Live refresh of the console's pages, without a reload: every few
// seconds it asks /api/live for the figures and writes each into the
// element that shows it (data-live="KEY"), and redraws the problems and
// each part of the page that the server draws (an element's data-src).
"use strict";
(function () {
  var body = document.body;
  var every = Number(body.dataset.refresh || 0) * 1000;
  if (!every) { return; }
  var url = "/api/live" + (body.dataset.queue ? "?queue=" + encodeURIComponent(body.dataset.queue) : "");
  function apply(live) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var v = live.fields[el.dataset.live];
      if (v !== undefined && el.textContent !== v) { el.textContent = v; }
    });
    // A page that waits for a replay or purge to end reloads once none runs.
    if (document.querySelector("[data-reload-when-idle]") && !live.tasks.some(function (t) { return t.running; })) {
      window.location.reload();
      return;
    }
    var health = document.getElementById("health");
    if (health) { health.dataset.healthy = String(live.healthy); }
    var list = document.getElementById("problems");
    if (list) {
      list.replaceChildren.apply(list, live.problems.map(function (p) {
        var li = document.createElement("li");
        li.textContent = p;
        return li;
      }));
    }
  }
  function redrawParts() {
    return Promise.all(Array.from(document.querySelectorAll("[data-src]")).map(function (part) {
      return fetch(part.dataset.src, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error(String(r.status))); })
        .then(function (html) { part.innerHTML = html; });
    }));
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/signin"); throw new Error("signed out"); }
        return r.json();
      })
      .then(apply)
      .then(redrawParts)
      .catch(function () { /* the next poll tries again */ })
      .finally(function () { window.setTimeout(poll, every); });
  }
  window.setTimeout(poll, every);
})();
