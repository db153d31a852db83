// The console's keyboard shortcuts, its live stream and the screen pop. No build step.
(function () {
  "use strict";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const typing = (el) => el && (el.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(el.tagName));
  const rows = () => $$("tr.task[data-task-id]");
  let selectedId = null;

  function select(row) {
    if (!row) return;
    selectedId = row.dataset.taskId;
    rows().forEach((r) => r.setAttribute("aria-selected", r === row ? "true" : "false"));
    row.focus();
  }
  function current() {
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("tr.task");
    return focused || rows().find((r) => r.dataset.taskId === selectedId) || null;
  }
  function move(step) {
    const all = rows();
    if (!all.length) return;
    const at = all.indexOf(current());
    select(all[Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + step))]);
  }

  let pendingG = false;
  document.addEventListener("keydown", (ev) => {
    const form = $("[data-complete-form]");
    if (form && ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      form.requestSubmit();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    const row = current();
    if (pendingG) {
      pendingG = false;
      if (ev.key === "i") { window.location.href = "/console"; return; }
    }
    switch (ev.key) {
      case "j": ev.preventDefault(); move(1); break;
      case "k": ev.preventDefault(); move(-1); break;
      case "Enter": {
        const link = row && $("[data-open]", row);
        if (link && ev.target === row) { ev.preventDefault(); link.click(); }
        break;
      }
      case "c": {
        const button = row ? $("[data-claim]", row) : $("[data-claim]");
        if (button) { ev.preventDefault(); button.click(); }
        break;
      }
      case "r": {
        const button = row && $("[data-release]", row);
        if (button) { ev.preventDefault(); button.click(); }
        break;
      }
      case "o": { const outcome = $("#outcome"); if (outcome) { ev.preventDefault(); outcome.focus(); } break; }
      case "/": { const q = $("#lookup-q"); if (q) { ev.preventDefault(); q.focus(); } break; }
      case "g": pendingG = true; break;
      case "?": { const help = $("#shortcuts"); if (help) { ev.preventDefault(); help.showModal(); } break; }
      default: break;
    }
  });

  // After htmx swaps a row or the whole inbox, keep the selection where the agent left it.
  document.addEventListener("htmx:afterSwap", () => {
    if (!selectedId) return;
    const row = rows().find((r) => r.dataset.taskId === selectedId);
    if (row && (document.activeElement === document.body || !document.activeElement)) select(row);
  });

  // A live refresh must not wipe the answer to the agent's own action ("Claimed. It is yours."):
  // the claim rings the bell too, so its refresh can land just after the row that carries it.
  let keptMessages = new Map();
  document.addEventListener("htmx:beforeSwap", (ev) => {
    if (!ev.detail.target || ev.detail.target.id !== "inbox") return;
    keptMessages = new Map(
      rows().filter((r) => $(".row-msg", r)).map((r) => [r.dataset.taskId, $(".row-msg", r).cloneNode(true)]),
    );
  });
  document.addEventListener("htmx:afterSwap", (ev) => {
    if (!ev.detail.target || !keptMessages.size) return;
    for (const row of rows()) {
      const msg = keptMessages.get(row.dataset.taskId);
      const cell = $("td.title", row);
      if (msg && cell && !$(".row-msg", row)) cell.append(msg);
    }
    keptMessages = new Map();
  });

  function refreshInbox() {
    const inbox = $("#inbox");
    if (!inbox || !window.htmx) return;
    const hadFocus = inbox.contains(document.activeElement);
    const keep = current();
    if (keep) selectedId = keep.dataset.taskId;
    window.htmx.ajax("GET", inbox.dataset.rowsUrl, { target: "#inbox", swap: "outerHTML" }).then(() => {
      if (!hadFocus || !selectedId) return;
      const row = rows().find((r) => r.dataset.taskId === selectedId);
      if (row) select(row);
    });
  }

  function showPop(html) {
    const pops = $("#screen-pops");
    if (!pops) return;
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const pop = holder.firstElementChild;
    if (!pop) return;
    const same = $(`[data-screen-pop="${CSS.escape(pop.dataset.screenPop)}"]`, pops);
    if (same) same.remove();
    pops.prepend(pop);
  }
  document.addEventListener("click", (ev) => {
    const dismiss = ev.target.closest && ev.target.closest("[data-dismiss]");
    if (dismiss) dismiss.closest(".pop").remove();
  });

  const url = document.body.dataset.live;
  if (url && window.EventSource) {
    const stream = new EventSource(url);
    const state = () => $("[data-live-state]");
    stream.addEventListener("open", () => { const s = state(); if (s) { s.textContent = "Live"; s.classList.remove("off"); } });
    stream.addEventListener("error", () => { const s = state(); if (s) { s.textContent = "Reconnecting…"; s.classList.add("off"); } });
    stream.addEventListener("inbox", refreshInbox);
    stream.addEventListener("screenpop", (ev) => showPop(ev.data));
    stream.addEventListener("signed-out", (ev) => { stream.close(); window.location.href = ev.data; });
    window.addEventListener("pagehide", () => stream.close());
  }

  document.addEventListener("DOMContentLoaded", () => {
    const error = $("#complete-error");
    if (error) error.focus();
  });
})();
