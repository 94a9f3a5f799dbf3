// The flow page's security-key step (flow.html): WebAuthn needs the browser API; everything else on the page
// works without JavaScript. A static file, not an inline script, so the Content-Security-Policy can forbid
// inline scripts (core/web/security.py).
(function () {
  const b64 = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));
  const enc = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const go = document.getElementById("webauthn-go");
  if (!go) return;
  const problem = document.getElementById("webauthn-error");
  go.addEventListener("click", () => run().catch((err) => {
    // Cancelled, timed out or no matching key: say so next to the button instead of failing silently.
    problem.textContent = "The security key did not answer (" + err.name + "). Try again.";
    problem.hidden = false;
  }));
  const run = async () => {
    problem.hidden = true;
    const o = JSON.parse(JSON.parse(document.getElementById("webauthn-options").textContent));
    o.challenge = b64(o.challenge);
    let cred;
    if (o.user) {
      o.user.id = b64(o.user.id);
      (o.excludeCredentials || []).forEach((c) => { c.id = b64(c.id); });
      cred = await navigator.credentials.create({ publicKey: o });
    } else {
      (o.allowCredentials || []).forEach((c) => { c.id = b64(c.id); });
      cred = await navigator.credentials.get({ publicKey: o });
    }
    const r = cred.response, out = { id: cred.id, rawId: enc(cred.rawId), type: cred.type, response: { clientDataJSON: enc(r.clientDataJSON) } };
    if (r.attestationObject) out.response.attestationObject = enc(r.attestationObject);
    if (r.authenticatorData) { out.response.authenticatorData = enc(r.authenticatorData); out.response.signature = enc(r.signature); if (r.userHandle) out.response.userHandle = enc(r.userHandle); }
    document.getElementById("webauthn-answer").value = JSON.stringify(out);
    document.getElementById("flow-form").submit();
  };
})();
