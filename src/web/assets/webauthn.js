// Passkeys on the two second-factor pages: the only script the site has. It asks the server
// for the options, hands them to the browser's WebAuthn API, and posts the answer back. The
// page's CSRF token goes in a header; everything it sends or shows is the server's.
"use strict";

(function () {
  const b64url = {
    decode(text) {
      const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
      const padded = base64 + "===".slice((base64.length + 3) % 4);
      return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
    },
    encode(buffer) {
      const bytes = new Uint8Array(buffer);
      let text = "";
      for (const b of bytes) text += String.fromCharCode(b);
      return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
  };

  async function post(url, csrf, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    if (response.redirected) {
      // The server asks for the second factor again first (step-up).
      window.location.assign(response.url);
      return null;
    }
    const answer = await response.json().catch(() => ({ error: "The server's answer could not be read." }));
    if (!response.ok) throw new Error(answer.error || "The request was refused.");
    return answer;
  }

  function creationOptions(options) {
    const o = options.publicKey;
    o.challenge = b64url.decode(o.challenge);
    o.user.id = b64url.decode(o.user.id);
    (o.excludeCredentials || []).forEach((c) => { c.id = b64url.decode(c.id); });
    return { publicKey: o };
  }

  function requestOptions(options) {
    const o = options.publicKey;
    o.challenge = b64url.decode(o.challenge);
    (o.allowCredentials || []).forEach((c) => { c.id = b64url.decode(c.id); });
    return { publicKey: o };
  }

  function registration(credential) {
    return {
      id: credential.id,
      rawId: b64url.encode(credential.rawId),
      type: credential.type,
      extensions: credential.getClientExtensionResults(),
      response: {
        attestationObject: b64url.encode(credential.response.attestationObject),
        clientDataJSON: b64url.encode(credential.response.clientDataJSON),
        transports: credential.response.getTransports ? credential.response.getTransports() : undefined,
      },
    };
  }

  function assertion(credential) {
    const r = credential.response;
    return {
      id: credential.id,
      rawId: b64url.encode(credential.rawId),
      type: credential.type,
      extensions: credential.getClientExtensionResults(),
      response: {
        authenticatorData: b64url.encode(r.authenticatorData),
        clientDataJSON: b64url.encode(r.clientDataJSON),
        signature: b64url.encode(r.signature),
        userHandle: r.userHandle ? b64url.encode(r.userHandle) : null,
      },
    };
  }

  async function register(box) {
    const csrf = box.dataset.csrf;
    const name = box.querySelector("[data-passkey-name]").value.trim();
    const options = await post("/account/second-factor/passkey/start", csrf);
    if (!options) return;
    const credential = await navigator.credentials.create(creationOptions(options));
    const done = await post("/account/second-factor/passkey/finish", csrf, {
      name: name,
      credential: registration(credential),
    });
    if (done) window.location.assign(done.redirect);
  }

  async function signIn(box) {
    const csrf = box.dataset.csrf;
    const options = await post("/login/second-factor/passkey/start", csrf);
    if (!options) return;
    const credential = await navigator.credentials.get(requestOptions(options));
    const done = await post("/login/second-factor/passkey/finish", csrf, {
      credential: assertion(credential),
      next: box.dataset.next,
    });
    if (done) window.location.assign(done.redirect);
  }

  document.querySelectorAll("[data-passkey]").forEach((box) => {
    const button = box.querySelector("[data-passkey-button]");
    const error = box.querySelector("[data-passkey-error]");
    if (!window.PublicKeyCredential) {
      error.textContent = "This browser cannot use passkeys.";
      error.hidden = false;
      button.disabled = true;
      return;
    }
    button.addEventListener("click", async () => {
      error.hidden = true;
      button.disabled = true;
      try {
        if (box.dataset.passkey === "register") await register(box);
        else await signIn(box);
      } catch (e) {
        error.textContent = e && e.name === "NotAllowedError"
          ? "The passkey was not used (cancelled, or it timed out). Try again."
          : (e && e.message) || "The passkey did not work.";
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  });
})();
