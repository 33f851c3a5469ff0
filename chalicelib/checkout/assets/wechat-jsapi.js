// WeChat JSAPI inside WeChat's in-app browser: hand the hub's signed parameters to the WeChat client through
// WeixinJSBridge. The bridge's answer is never taken as the outcome ("ok" only means the client says so): checkout.js
// keeps polling the hub, which learns the outcome from WeChat's signed callback or its own query.
(function () {
  "use strict";
  var button = document.getElementById("wechat-pay");
  var note = document.getElementById("wechat-note");
  if (!button || !note) { return; }
  var params = JSON.parse(button.getAttribute("data-jsapi"));
  var busy = false;
  function say(kind) {
    note.textContent = note.getAttribute("data-" + kind);
    note.hidden = false;
  }
  function pay() {
    if (busy) { return; }
    busy = true;
    button.disabled = true;
    window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, function (res) {
      busy = false;
      var msg = (res && res.err_msg) || "";
      if (msg === "get_brand_wcpay_request:ok") { say("checking"); return; }
      button.disabled = false; // cancelled or failed: the payer may pay again, or switch method below
      say(msg === "get_brand_wcpay_request:cancel" ? "cancelled" : "failed");
      button.focus();
    });
  }
  function ready() {
    button.addEventListener("click", pay);
    pay(); // the payer already chose WeChat Pay: open WeChat's payment sheet at once
  }
  if (window.WeixinJSBridge && typeof window.WeixinJSBridge.invoke === "function") {
    ready();
  } else {
    document.addEventListener("WeixinJSBridgeReady", ready, false);
  }
})();
