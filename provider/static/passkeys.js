// Passkey ceremonies in the browser: buttons marked with data-passkey="register", "sign-in" or
// "factor" ask the server for options, call the WebAuthn API, and send the answer back as
// JSON (binary fields as base64url), with the page's CSRF token in the X-CSRF-Token header.
"use strict";

(function () {
  function fromBase64url(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    const binary = atob(padded);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function post(url, csrf, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (ignored) {
      data = null;
    }
    if (!response.ok) {
      throw new Error((data && data.error) || "The request failed (" + response.status + ").");
    }
    return data;
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: fromBase64url(c.id) });
    });
  }

  function creationOptions(options) {
    const publicKey = Object.assign({}, options.publicKey);
    publicKey.challenge = fromBase64url(publicKey.challenge);
    publicKey.user = Object.assign({}, publicKey.user, { id: fromBase64url(publicKey.user.id) });
    publicKey.excludeCredentials = withIds(publicKey.excludeCredentials);
    return { publicKey: publicKey };
  }

  function requestOptions(options) {
    const publicKey = Object.assign({}, options.publicKey);
    publicKey.challenge = fromBase64url(publicKey.challenge);
    if (publicKey.allowCredentials) publicKey.allowCredentials = withIds(publicKey.allowCredentials);
    return { publicKey: publicKey };
  }

  function extensions(credential) {
    try {
      return JSON.parse(JSON.stringify(credential.getClientExtensionResults()));
    } catch (ignored) {
      return {};
    }
  }

  function registration(credential) {
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toBase64url(credential.response.attestationObject),
        clientDataJSON: toBase64url(credential.response.clientDataJSON),
      },
      extensions: extensions(credential),
    };
  }

  function assertion(credential) {
    const response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: toBase64url(response.authenticatorData),
        clientDataJSON: toBase64url(response.clientDataJSON),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
      },
      extensions: extensions(credential),
    };
  }

  function showError(button, message) {
    const box = document.getElementById(button.dataset.error || "");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  async function register(button) {
    const csrf = button.dataset.csrfToken;
    const field = document.getElementById(button.dataset.nameField || "");
    const options = await post("/account/passkeys/register/options", csrf);
    const credential = await navigator.credentials.create(creationOptions(options));
    const done = await post("/account/passkeys/register/finish", csrf, {
      name: field ? field.value : "",
      credential: registration(credential),
    });
    window.location.assign(done.redirect);
  }

  async function authenticate(button, query) {
    const csrf = button.dataset.csrfToken;
    const options = await post("/login/passkey/options" + query, csrf);
    const credential = await navigator.credentials.get(requestOptions(options));
    const done = await post("/login/passkey/finish" + query, csrf, {
      credential: assertion(credential),
      authenticator_attachment: credential.authenticatorAttachment || null,
      next: button.dataset.next || "/",
    });
    window.location.assign(done.redirect);
  }

  function start(button) {
    const kind = button.dataset.passkey;
    let ceremony;
    if (kind === "register") ceremony = register(button);
    else if (kind === "sign-in") ceremony = authenticate(button, "");
    else if (kind === "factor") ceremony = authenticate(button, "?mode=factor");
    else return;
    button.disabled = true;
    ceremony.catch(function (error) {
      button.disabled = false;
      const cancelled = error && error.name === "NotAllowedError";
      showError(button, cancelled ? "The passkey request was cancelled or timed out." : error.message);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const buttons = document.querySelectorAll("button[data-passkey]");
    if (!window.PublicKeyCredential) {
      buttons.forEach(function (button) {
        button.disabled = true;
        showError(button, "This browser does not support passkeys.");
      });
      return;
    }
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        start(button);
      });
    });
  });
})();
