/*! winback.js v1: cart tracking, idle and exit intent, and the on-site nudge.
 * Install: <script src="https://WINBACK/winback/v1/winback.js" data-key="pk_..." async></script>
 * No framework, no build step, no dependency. It never blocks the page: every call is wrapped,
 * network failures are swallowed, and after one failure it stays quiet for a while.
 * One first-party cookie (winback_id, the browser's random id); nothing else is stored.
 */
(function (window, document) {
  "use strict";
  if (window.winback && window.winback.version) { return; }

  var script = document.currentScript ||
    document.querySelector("script[src*='/winback/v1/winback.js']");
  var data = (script && script.dataset) || {};
  var config = {
    key: data.key || "",
    api: (data.api || (script ? new URL(script.src, location.href).origin : "")).replace(/\/$/, ""),
    idleSeconds: num(data.idle, 60),
    minSeconds: num(data.minTime, 10),
    consentRequired: data.consent === "required",
    locale: data.locale || "",
    cartId: data.cartId || ""
  };
  var COOKIE = "winback_id";
  var TIMEOUT_MS = 4000;
  var QUIET_AFTER_FAILURE_MS = 60000;
  var POLLS = 8, POLL_MS = 1500;
  var TEXTS = {
    en: { title: "Can we help?", chat: "Chat with us", callback: "Call me back",
          dismiss: "No thanks", close: "Close", phone: "Your phone number",
          consent: "Yes, call me at this number about my cart. It is used for this call only.",
          send: "Call me", back: "Back", thanks: "Thanks! Someone from our team will call you shortly.",
          invalid: "Please check the number and tick the box.", failed: "Sorry, that did not work. Please try again later." },
    es: { title: "¿Te ayudamos?", chat: "Chatea con nosotros", callback: "Llamadme",
          dismiss: "No, gracias", close: "Cerrar", phone: "Tu número de teléfono",
          consent: "Sí, llamadme a este número por mi carrito. Solo se usa para esta llamada.",
          send: "Llamadme", back: "Volver", thanks: "¡Gracias! Alguien de nuestro equipo te llamará en breve.",
          invalid: "Revisa el número y marca la casilla.", failed: "Lo sentimos, no ha funcionado. Inténtalo más tarde." },
    fr: { title: "Besoin d'aide ?", chat: "Discuter avec nous", callback: "Rappelez-moi",
          dismiss: "Non merci", close: "Fermer", phone: "Votre numéro de téléphone",
          consent: "Oui, appelez-moi à ce numéro au sujet de mon panier. Il ne sert qu'à cet appel.",
          send: "Appelez-moi", back: "Retour", thanks: "Merci ! Quelqu'un de notre équipe va vous appeler.",
          invalid: "Vérifiez le numéro et cochez la case.", failed: "Désolé, cela n'a pas fonctionné. Réessayez plus tard." },
    de: { title: "Können wir helfen?", chat: "Mit uns chatten", callback: "Rückruf",
          dismiss: "Nein danke", close: "Schließen", phone: "Ihre Telefonnummer",
          consent: "Ja, rufen Sie mich zu meinem Warenkorb unter dieser Nummer an. Nur für diesen Anruf.",
          send: "Anrufen lassen", back: "Zurück", thanks: "Danke! Jemand aus unserem Team ruft Sie gleich an.",
          invalid: "Bitte Nummer prüfen und Feld ankreuzen.", failed: "Das hat leider nicht geklappt. Bitte später erneut versuchen." }
  };

  var state = {
    consented: !config.consentRequired,
    visitor: null, items: [], identity: null, quietUntil: 0,
    startedAt: Date.now(), lastInput: Date.now(), idleSent: false, exitSent: false,
    polling: false, shown: {}, open: null, hooks: {}, customTexts: {}
  };

  function num(value, fallback) {
    var n = parseFloat(value);
    return isFinite(n) && n >= 0 ? n : fallback;
  }
  function safe(fn) {
    return function () {
      try { return fn.apply(this, arguments); } catch (err) { /* never break the page */ }
    };
  }
  function randomId() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    var s = "";
    for (var i = 0; i < bytes.length; i++) { s += ("0" + bytes[i].toString(16)).slice(-2); }
    return s;
  }
  function readCookie() {
    var match = document.cookie.match(/(?:^|;\s*)winback_id=([A-Za-z0-9_-]{16,128})/);
    return match ? match[1] : null;
  }
  function visitor() {
    if (!state.consented) { return null; }
    if (!state.visitor) {
      state.visitor = readCookie() || randomId();
      document.cookie = COOKIE + "=" + state.visitor + "; Max-Age=31536000; Path=/; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
    }
    return state.visitor;
  }
  function cartId() { return config.cartId || ("w-" + visitor()); }
  function texts() {
    var lang = ((state.identity && state.identity.locale) || config.locale ||
      document.documentElement.lang || navigator.language || "en").slice(0, 2).toLowerCase();
    var base = TEXTS[lang] || TEXTS.en, out = {}, k;
    for (k in base) { out[k] = state.customTexts[k] || base[k]; }
    return out;
  }
  function emit(name, detail) {
    var fn = state.hooks[name];
    if (typeof fn === "function") { safe(fn)(detail); }
    safe(function () { window.dispatchEvent(new CustomEvent("winback:" + name, { detail: detail })); })();
  }

  // --- the network: cheap, bounded, and silent when Winback is down -------------------------
  function request(method, path, body, keepalive) {
    if (!config.key || !config.api || !visitor() || Date.now() < state.quietUntil || !window.fetch) {
      return Promise.resolve(null);
    }
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller && setTimeout(function () { controller.abort(); }, TIMEOUT_MS);
    var url = config.api + "/v1/client" + path + "?key=" + encodeURIComponent(config.key);
    return fetch(url, {
      method: method, mode: "cors", credentials: "omit", keepalive: !!keepalive,
      headers: body ? { "Content-Type": "application/json", "X-Winback-Visitor": state.visitor }
                    : { "X-Winback-Visitor": state.visitor },
      body: body ? JSON.stringify(body) : undefined,
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      if (timer) { clearTimeout(timer); }
      if (response.status === 429 || response.status >= 500) {
        var wait = parseFloat(response.headers.get("Retry-After")) * 1000;
        state.quietUntil = Date.now() + (isFinite(wait) ? wait : QUIET_AFTER_FAILURE_MS);
        return null;
      }
      return response.json().then(function (json) {
        return { ok: response.ok, status: response.status, body: json };
      });
    }).catch(function () {
      if (timer) { clearTimeout(timer); }
      state.quietUntil = Date.now() + QUIET_AFTER_FAILURE_MS;
      return null;
    });
  }
  function eventOf(type, extra) {
    var event = { event_id: randomId(), type: type, page: location.pathname + location.search };
    var k;
    for (k in extra || {}) { event[k] = extra[k]; }
    if (state.identity) { event.identity = state.identity; }
    return event;
  }
  function send(type, extra, keepalive) {
    return request("POST", "/carts/" + encodeURIComponent(cartId()) + "/events",
                   eventOf(type, extra), keepalive);
  }
  // The page is going away: navigator.sendBeacon outlives the unload, where a fetch that needs a
  // CORS preflight (our visitor header) may never leave. A beacon is CORS-simple: text/plain
  // JSON to the batch route, the key in the URL, the browser's id in the body.
  function sendOnExit(type, extra) {
    if (config.key && config.api && visitor() && Date.now() >= state.quietUntil &&
        navigator.sendBeacon) {
      var event = eventOf(type, extra);
      event.cart_id = cartId();
      var url = config.api + "/v1/client/events:batch?key=" + encodeURIComponent(config.key);
      if (navigator.sendBeacon(url, JSON.stringify({ visitor: state.visitor, events: [event] }))) {
        return Promise.resolve(null);
      }
    }
    return send(type, extra, true);
  }

  // --- the nudge -------------------------------------------------------------------------------
  function pollNudge(times) {
    if (state.polling || state.open) { return; }
    state.polling = true;
    var left = times || POLLS;
    (function tick() {
      request("GET", "/carts/" + encodeURIComponent(cartId()) + "/nudge").then(function (answer) {
        var nudge = answer && answer.ok && answer.body && answer.body.nudge;
        if (nudge && !state.shown[nudge.id]) {
          state.polling = false;
          showNudge(nudge);
        } else if (--left > 0 && answer) {
          setTimeout(tick, POLL_MS);
        } else {
          state.polling = false;
        }
      });
    })();
  }
  function reply(nudge, body) {
    return request("POST", "/carts/" + encodeURIComponent(cartId()) + "/nudge/reply", body);
  }
  var STYLE = ":host{all:initial}" +
    ".backdrop{position:fixed;inset:0;background:rgba(15,23,42,.45);display:flex;align-items:center;" +
    "justify-content:center;z-index:2147483647;font:16px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif}" +
    ".dialog{background:#fff;color:#111827;border-radius:12px;padding:1.25rem;width:calc(100% - 2rem);" +
    "max-width:26rem;box-shadow:0 10px 30px rgba(0,0,0,.25);box-sizing:border-box}" +
    "@media (max-width:480px){.backdrop{align-items:flex-end}.dialog{width:100%;max-width:none;" +
    "border-radius:12px 12px 0 0}}" +
    "h2{font-size:1.15rem;margin:0 0 .5rem}p{margin:0 0 1rem}" +
    ".actions{display:flex;flex-wrap:wrap;gap:.5rem}" +
    "button{font:inherit;padding:.6rem 1rem;border-radius:8px;border:1px solid #d1d5db;background:#fff;" +
    "color:#111827;cursor:pointer;min-height:44px}" +
    "button.primary{background:#1d4ed8;border-color:#1d4ed8;color:#fff}" +
    "button:focus-visible,input:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
    "label{display:block;margin:.25rem 0}input[type=tel]{font:inherit;width:100%;box-sizing:border-box;" +
    "padding:.55rem;border:1px solid #9ca3af;border-radius:8px;margin-bottom:.75rem;min-height:44px}" +
    ".consent{display:flex;gap:.5rem;align-items:flex-start;margin-bottom:1rem;font-size:.9rem}" +
    ".consent input{margin-top:.2rem;width:1.2rem;height:1.2rem}" +
    ".error{color:#b91c1c;font-size:.9rem;margin:0 0 .75rem}";

  function el(tag, attrs, children) {
    var node = document.createElement(tag), k;
    for (k in attrs || {}) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    }
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }
  function showNudge(nudge) {
    if (state.open) { return; }
    state.shown[nudge.id] = true;
    var t = texts();
    var returnFocus = document.activeElement;
    var host = el("div", { "data-winback": "nudge" });
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var dialog = el("div", { "class": "dialog", role: "dialog", "aria-modal": "true",
      "aria-labelledby": "wb-title", "aria-describedby": "wb-message" });
    var backdrop = el("div", { "class": "backdrop" }, [dialog]);
    root.appendChild(el("style", { text: STYLE }));
    root.appendChild(backdrop);
    document.body.appendChild(host);
    state.open = { host: host, nudge: nudge };
    emit("nudge", { id: nudge.id, offer: nudge.offer });

    function close(answer) {
      if (!state.open) { return; }
      document.removeEventListener("keydown", onKey, true);
      host.remove();
      state.open = null;
      if (answer) { reply(nudge, { reply: answer }); }
      if (returnFocus && returnFocus.focus) { safe(function () { returnFocus.focus(); })(); }
    }
    function focusables() {
      return Array.prototype.slice.call(dialog.querySelectorAll("button, input"))
        .filter(function (n) { return !n.disabled; });
    }
    function onKey(e) {
      if (e.key === "Escape") { e.preventDefault(); close("dismiss"); return; }
      if (e.key !== "Tab") { return; }
      var nodes = focusables();
      if (!nodes.length) { return; }
      var active = root.activeElement || document.activeElement;
      var first = nodes[0], last = nodes[nodes.length - 1];
      if (e.shiftKey && (active === first || nodes.indexOf(active) < 0)) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && (active === last || nodes.indexOf(active) < 0)) { e.preventDefault(); first.focus(); }
    }
    document.addEventListener("keydown", onKey, true);

    function screen(children, focusNode) {
      dialog.innerHTML = "";
      children.forEach(function (c) { dialog.appendChild(c); });
      (focusNode || focusables()[0]).focus();
    }
    function choices() {
      var buttons = [];
      if (nudge.offer.indexOf("chat") >= 0) {
        var chat = el("button", { type: "button", "class": "primary", text: t.chat });
        chat.onclick = safe(function () {
          close(null);
          reply(nudge, { reply: "chat" });
          emit("chat", { cart_id: cartId() });
        });
        buttons.push(chat);
      }
      if (nudge.offer.indexOf("callback") >= 0) {
        var call = el("button", { type: "button", "class": buttons.length ? "" : "primary", text: t.callback });
        call.onclick = safe(callbackForm);
        buttons.push(call);
      }
      var no = el("button", { type: "button", text: t.dismiss });
      no.onclick = safe(function () { close("dismiss"); });
      buttons.push(no);
      screen([el("h2", { id: "wb-title", text: t.title }),
              el("p", { id: "wb-message", text: nudge.message }),
              el("div", { "class": "actions" }, buttons)]);
    }
    function callbackForm() {
      var input = el("input", { id: "wb-phone", type: "tel", autocomplete: "tel", required: "required",
        inputmode: "tel" });
      var tick = el("input", { id: "wb-consent", type: "checkbox", required: "required" });
      var error = el("p", { "class": "error", role: "alert", id: "wb-error" });
      var submit = el("button", { type: "submit", "class": "primary", text: t.send });
      var back = el("button", { type: "button", text: t.back });
      back.onclick = safe(choices);
      input.oninput = tick.onchange = function () { error.textContent = ""; };
      var form = el("form", { novalidate: "novalidate", "aria-describedby": "wb-message" }, [
        el("label", { "for": "wb-phone", text: t.phone }), input,
        el("div", { "class": "consent" }, [tick, el("label", { "for": "wb-consent", text: t.consent })]),
        error, el("div", { "class": "actions" }, [submit, back])
      ]);
      form.onsubmit = safe(function (e) {
        e.preventDefault();
        if (!input.value.trim() || !tick.checked) { error.textContent = t.invalid; return; }
        submit.disabled = true;
        reply(nudge, { reply: "callback", phone: input.value.trim(), consent: true })
          .then(safe(function (answer) {
            submit.disabled = false;
            if (answer && answer.ok) {
              emit("callback", { cart_id: cartId() });
              var done = el("button", { type: "button", "class": "primary", text: t.close });
              done.onclick = safe(function () { close(null); });
              screen([el("h2", { id: "wb-title", text: t.title }),
                      el("p", { id: "wb-message", role: "status", text: t.thanks }),
                      el("div", { "class": "actions" }, [done])]);
            } else {
              error.textContent = answer && answer.status === 422 ? t.invalid : t.failed;
            }
          }));
      });
      screen([el("h2", { id: "wb-title", text: t.callback }),
              el("p", { id: "wb-message", text: nudge.message }), form], input);
    }
    choices();
  }

  // --- signals: page activity, idle, exit intent ------------------------------------------------
  function longEnough() { return Date.now() - state.startedAt >= config.minSeconds * 1000; }
  function hasItems() { return state.items.length > 0; }
  function exitIntent(leaving) {
    if (state.exitSent || !longEnough() || !hasItems() || !state.consented) { return; }
    state.exitSent = true;
    if (leaving) { sendOnExit("exit_intent"); return; }
    send("exit_intent", null, true).then(function () { pollNudge(); });
  }
  function onInput() { state.lastInput = Date.now(); }
  function checkIdle() {
    if (state.idleSent || !state.consented || !hasItems() || !longEnough()) { return; }
    if (Date.now() - state.lastInput >= config.idleSeconds * 1000) {
      state.idleSent = true;
      send("idle").then(function () { pollNudge(); });
    }
  }
  var lastScroll = { y: window.scrollY, at: Date.now() };
  function onScroll() {
    onInput();
    var now = Date.now(), y = window.scrollY, dt = now - lastScroll.at;
    if (dt > 0 && dt < 300 && lastScroll.y - y > 0 && (lastScroll.y - y) / dt > 2.5 && y < 400) {
      exitIntent(); // a fast flick back to the top, on a phone: reaching for the address bar
    }
    lastScroll = { y: y, at: now };
  }
  var touch = window.matchMedia && window.matchMedia("(hover: none), (pointer: coarse)").matches;
  var backGuard = false;
  function armBackGuard() {
    // Mobile only: one extra history entry, so the first "back" shows the offer instead of
    // leaving; the next back leaves as usual. Armed once the shopper has something in the cart.
    if (!touch || backGuard || !hasItems() || !history.pushState) { return; }
    backGuard = true;
    history.pushState({ winback: true }, "", location.href);
  }
  function listen() {
    ["mousemove", "keydown", "pointerdown", "touchstart", "wheel"].forEach(function (name) {
      document.addEventListener(name, onInput, { passive: true, capture: true });
    });
    window.addEventListener("scroll", safe(onScroll), { passive: true });
    document.addEventListener("mouseout", safe(function (e) {
      if (!e.relatedTarget && e.clientY <= 0) { exitIntent(); }
    }));
    document.addEventListener("visibilitychange", safe(function () {
      if (document.visibilityState === "hidden") { if (touch) { exitIntent(true); } }
      else if (state.exitSent || state.idleSent) { pollNudge(3); }
    }));
    window.addEventListener("popstate", safe(function () {
      if (backGuard && !state.exitSent) { exitIntent(); }
    }));
    setInterval(safe(checkIdle), 1000);
  }

  // --- the public API ------------------------------------------------------------------------
  function totalQuantity(items) {
    return items.reduce(function (n, i) { return n + (i.quantity || 1); }, 0);
  }
  var api = {
    version: "1",
    cart: {
      update: safe(function (items) {
        var clean = (items || []).map(function (i) {
          var out = { sku: String(i.sku), name: String(i.name || i.sku),
                      price: Number(i.price) || 0, quantity: Math.max(1, parseInt(i.quantity, 10) || 1) };
          ["product_id", "category", "url"].forEach(function (k) { if (i[k] != null) { out[k] = String(i[k]); } });
          return out;
        });
        var type = totalQuantity(clean) < totalQuantity(state.items) ? "item_removed" : "item_added";
        state.items = clean;
        onInput();
        armBackGuard();
        return send(type, { items: clean });
      }),
      setId: safe(function (id) { config.cartId = String(id); }),
      id: function () { return state.consented ? cartId() : null; }
    },
    identify: safe(function (identity) {
      state.identity = identity || null;
      return send("activity");
    }),
    track: safe(function (type) {
      return send(type === "checkout_started" ? "checkout_started" : "activity");
    }),
    consent: safe(function (granted) {
      state.consented = !!granted;
      if (granted) { send("activity"); } else {
        state.visitor = null;
        document.cookie = COOKIE + "=; Max-Age=0; Path=/; SameSite=Lax";
      }
    }),
    on: safe(function (name, fn) { state.hooks[name] = fn; }),
    texts: safe(function (custom) { state.customTexts = custom || {}; }),
    checkNudge: safe(function () { pollNudge(1); })
  };
  window.winback = api;
  safe(function () {
    var queued = window.winbackQueue || [];
    window.winbackQueue = { push: safe(function (call) { run(call); }) };
    function run(call) {
      var path = String(call[0]).split("."), target = api, i;
      for (i = 0; i < path.length - 1; i++) { target = target[path[i]]; }
      target[path[path.length - 1]].apply(target, call.slice(1));
    }
    queued.forEach(safe(run));
  })();
  safe(function () {
    listen();
    if (state.consented) {
      var returning = !!readCookie();
      send("activity").then(function () { if (returning) { pollNudge(1); } });
    }
  })();
})(window, document);
