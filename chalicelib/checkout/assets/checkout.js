// Hosted checkout: while the payer pays elsewhere (a QR code, a bank's page), poll the session's small status
// document and redraw the page when its state changes. The page works without this file; it only saves a reload.
(function () {
  "use strict";
  var body = document.body;
  var url = body.getAttribute("data-poll");
  var shown = body.getAttribute("data-state");
  var heading = document.querySelector("h1[tabindex='-1']");
  if (heading) { heading.focus(); } // a result screen: screen readers start at its heading
  if (!url) { return; }
  var delay = 500; // the page must show success within 2 s of the callback reaching the hub
  var stopped = false;
  function poll() {
    if (stopped) { return; }
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s && s.state && s.state !== shown) {
          stopped = true;
          var lang = new URLSearchParams(window.location.search).get("lang");
          window.location.replace(window.location.pathname + (lang ? "?lang=" + encodeURIComponent(lang) : ""));
          return;
        }
        setTimeout(poll, document.hidden ? 3000 : delay);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, delay);
})();
