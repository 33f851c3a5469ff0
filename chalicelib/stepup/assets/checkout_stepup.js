// Hosted checkout, step-up screen: confirm the payment with the device's platform authenticator (fingerprint,
// face, PIN). The server draws everything else; this only shows the WebAuthn button when the browser can use it,
// and drives navigator.credentials.get through PayhubWebAuthn (webauthn_step_up.js) against the page's own routes.
(function () {
  "use strict";
  var box = document.getElementById("stepup-webauthn-box");
  if (!box || !window.PublicKeyCredential || !window.PayhubWebAuthn || !window.fetch) { return; }
  var button = document.getElementById("stepup-webauthn");
  var message = document.getElementById("stepup-message");
  var url = box.getAttribute("data-url");
  var csrf = box.getAttribute("data-csrf");
  box.hidden = false;

  function say(key) {
    message.textContent = box.getAttribute("data-msg-" + key) || "";
    message.hidden = !message.textContent;
  }

  // PayhubWebAuthn.confirm asks "/step_up" (start) and "/step_up/verify" (answer): both go to the page's route,
  // which holds the session's key in its path, with the page's CSRF token.
  function post(path, body) {
    var payload = { step: path === "/step_up" ? "options" : "verify", credential: body.credential || null };
    return fetch(url, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(payload)
    }).then(function (r) {
      return r.json().then(function (answer) {
        if (!r.ok) { var e = new Error(answer.error || "refused"); e.code = answer.error; throw e; }
        return answer;
      });
    });
  }

  function reload() {
    var lang = new URLSearchParams(window.location.search).get("lang");
    window.location.replace(window.location.pathname + (lang ? "?lang=" + encodeURIComponent(lang) : ""));
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    say("waiting");
    window.PayhubWebAuthn.confirm(post, "").then(reload, function (e) {
      button.disabled = false;
      // NotAllowedError: the payer cancelled, the authenticator timed out or did not recognise them.
      if (e && e.code === "expired") { say("expired"); }
      else if (e && (e.name === "NotAllowedError" || e.code === "wrong")) { say("cancelled"); }
      else if (e && e.code === "failed") { reload(); }
      else { say("unavailable"); }
    });
  });
})();
