// hoist dashboard: live updates with the browser's EventSource, and the
// rollback button. No build step, no dependencies. Without it the pages
// still render; they are only not live.
"use strict";

(() => {
  const live = document.getElementById("live");
  if (!live) return;
  const status = document.getElementById("live-status");
  const scope = live.dataset.scope || "";
  const since = document.body.dataset.since || "0";
  const first = live.querySelector('[data-part="summary"]');
  let lastHead = first ? first.dataset.head : "";

  // refresh fetches the page's live parts again and swaps the ones that
  // changed. Calls while one runs are folded into one more run after it.
  let running = false, again = false;
  async function refresh() {
    if (running) { again = true; return; }
    running = true;
    try {
      do {
        again = false;
        const resp = await fetch(live.dataset.live, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
        if (!resp.ok) break;
        const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
        swap(doc);
      } while (again);
    } catch (e) {
      // The server is away; the event stream says when it is back.
    } finally {
      running = false;
    }
  }

  function swap(doc) {
    let deferred = false;
    for (const next of doc.querySelectorAll("[data-part]")) {
      const cur = live.querySelector(`[data-part="${next.dataset.part}"]`);
      if (!cur || cur.outerHTML === next.outerHTML) continue;
      // Never pull a field from under the keyboard; a focused button keeps
      // its focus in the new part.
      const active = document.activeElement;
      let refocus = null;
      if (active && active !== document.body && cur.contains(active)) {
        if (active.matches("select, input, textarea")) { deferred = true; continue; }
        if (active.id) refocus = `#${CSS.escape(active.id)}`;
        else if (active.dataset.rollbackTo) refocus = `[data-rollback-to="${active.dataset.rollbackTo}"]`;
      }
      const seen = new Set([...cur.querySelectorAll("[data-revision]")].map((li) => li.dataset.revision));
      cur.replaceWith(next);
      const again = refocus && next.querySelector(refocus);
      if (again) again.focus({ preventScroll: true });
      if (next.dataset.part === "timeline" && seen.size > 0) {
        for (const li of next.querySelectorAll("[data-revision]")) {
          if (!seen.has(li.dataset.revision)) li.classList.add("fresh");
        }
      }
      if (next.dataset.part === "summary" && next.dataset.head !== lastHead) {
        lastHead = next.dataset.head;
        status.textContent = `${scope}: revision ${lastHead}`;
      }
    }
    if (deferred) setTimeout(refresh, 1000);
  }

  let timer = 0;
  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 50);
  }

  const params = new URLSearchParams({ since });
  if (scope) params.set("scope", scope);
  const es = new EventSource(`/v1/events?${params}`);
  for (const kind of ["event", "status", "backends", "score", "node", "reset"]) {
    es.addEventListener(kind, soon);
  }
  es.addEventListener("open", () => { document.body.classList.remove("offline"); soon(); });
  es.addEventListener("error", () => { document.body.classList.add("offline"); });
  // Request rates and "5s ago" move without events.
  if (scope) setInterval(refresh, 2000);

  // Rollback: confirm in a dialog, then POST with If-Match: the head the
  // page showed, so a scope that moved meanwhile is not rolled back blind.
  const dialog = document.getElementById("confirm");
  let pending = null;
  live.addEventListener("click", (ev) => {
    const btn = ev.target.closest("[data-rollback-to]");
    if (!btn || !dialog) return;
    const summary = live.querySelector('[data-part="summary"]');
    pending = { to: Number(btn.dataset.rollbackTo), head: summary ? summary.dataset.head : btn.dataset.head, from: btn };
    document.getElementById("confirm-text").textContent =
      `Publish a new revision of ${scope} that restores the spec of revision ${pending.to}? The head is revision ${pending.head}; if it moves before this is sent, nothing is published.`;
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-ok").focus();
  });
  if (dialog) dialog.addEventListener("close", async () => {
    const p = pending;
    pending = null;
    if (!p || dialog.returnValue !== "confirm") { if (p) p.from.focus(); return; }
    const out = document.getElementById("action-result");
    out.className = "result";
    out.textContent = `Rolling back to revision ${p.to}…`;
    try {
      const resp = await fetch(`/v1/scopes/${scope}/rollback`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "If-Match": p.head },
        body: JSON.stringify({ to: p.to }),
      });
      const body = await resp.json();
      const res = document.getElementById("action-result");
      if (resp.ok) {
        res.className = "result ok";
        res.textContent = `Published revision ${body.revision}: ${body.summary}.`;
      } else {
        res.className = "result bad";
        res.textContent = resp.status === 412
          ? `Nothing was published: the head moved to revision ${body.actual}. Check the new revisions and try again.`
          : `Nothing was published: ${body.error}`;
      }
    } catch (e) {
      out.className = "result bad";
      out.textContent = "Nothing was published: the API did not answer.";
    }
    refresh();
  });
})();
