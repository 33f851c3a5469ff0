// The payer's side of the WebAuthn step-up, for any page that hosts it (the hosted checkout page).
// It turns the hub's options (JSON, binary fields in base64url) into navigator.credentials calls, and the
// authenticator's answer back into the JSON the hub verifies. `post(path, body)` is how the page reaches the hub
// (through the checkout session or the merchant's backend); it resolves to the parsed JSON answer.
(function () {
  "use strict";

  function decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
  }

  function encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map((d) => Object.assign({}, d, { id: decode(d.id) }));
  }

  async function register(post, userId) {
    const options = (await post("/authenticators/options", { user_id: userId })).public_key;
    const publicKey = Object.assign({}, options, {
      challenge: decode(options.challenge),
      user: Object.assign({}, options.user, { id: decode(options.user.id) }),
      excludeCredentials: descriptors(options.excludeCredentials),
    });
    const credential = await navigator.credentials.create({ publicKey });
    return post("/authenticators", {
      user_id: userId,
      credential: {
        id: credential.id, rawId: encode(credential.rawId), type: credential.type,
        authenticatorAttachment: credential.authenticatorAttachment,
        clientExtensionResults: credential.getClientExtensionResults(),
        response: {
          clientDataJSON: encode(credential.response.clientDataJSON),
          attestationObject: encode(credential.response.attestationObject),
          transports: credential.response.getTransports ? credential.response.getTransports() : [],
        },
      },
    });
  }

  // Starts the payment's WebAuthn challenge, asks the platform authenticator (Touch ID, Face ID, Windows
  // Hello...) and sends the assertion; resolves to the payment as the hub answers it.
  async function confirm(post, paymentId) {
    const started = await post("/step_up", { payment_id: paymentId, method: "webauthn" });
    const options = started.action.public_key;
    const publicKey = Object.assign({}, options, {
      challenge: decode(options.challenge),
      allowCredentials: descriptors(options.allowCredentials),
    });
    const assertion = await navigator.credentials.get({ publicKey });
    return post("/step_up/verify", {
      payment_id: paymentId,
      credential: {
        id: assertion.id, rawId: encode(assertion.rawId), type: assertion.type,
        authenticatorAttachment: assertion.authenticatorAttachment,
        clientExtensionResults: assertion.getClientExtensionResults(),
        response: {
          clientDataJSON: encode(assertion.response.clientDataJSON),
          authenticatorData: encode(assertion.response.authenticatorData),
          signature: encode(assertion.response.signature),
          userHandle: assertion.response.userHandle ? encode(assertion.response.userHandle) : null,
        },
      },
    });
  }

  window.PayhubWebAuthn = { register: register, confirm: confirm };
})();
