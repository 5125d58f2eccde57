// Live updates: listens on the page's WebSocket and re-renders what changed, in place.
//
// The server numbers the events of each stream (workflows.live). This page keeps the last
// number it saw per stream: a number seen before is a duplicate (delivery is at least
// once); a number that skips one reveals a lost message, and the page asks the server
// for what it missed (`sync`), as it does when it reconnects or its tab comes back into
// view. When the server cannot replay (too far behind, or a new epoch) it says `resync`
// and the page simply re-renders. Re-rendering fetches this same URL, rendered by the
// server for this person, and swaps the live regions, keeping what the person was typing.
(function () {
  "use strict";
  const body = document.body;
  const path = body.dataset.live;
  if (!path || !("WebSocket" in window)) return;
  const me = body.dataset.liveUser || "";
  const regions = [body.dataset.liveRegion || "main", ".topbar nav", ".topbar .bell"];
  const DONE = {
    approve: "approved", reject: "rejected", request_changes: "asked for changes on",
    submit: "submitted", resubmit: "resubmitted", withdraw: "withdrew", cancel: "cancelled",
    claim: "claimed", unclaim: "released", reassign: "reassigned", comment: "commented on",
    attach: "added a file to", complete: "completed a task on", hand_back: "handed back",
    escalate: "escalated", expire: "expired", create: "created",
  };
  const noticed = new Set();  // event ids already shown (a replay must not show one twice)
  let epoch = null;
  let cursors = {};
  let socket = null;
  let backoff = 500;
  let refreshing = null;
  let refreshAgain = false;
  let retry = null;

  // --- re-rendering ---------------------------------------------------------------------

  const EDITABLE = "textarea, select, input:not([type=hidden]):not([type=submit]):not([type=button])";

  function fieldKey(field) {
    const form = field.form ? (field.form.getAttribute("action") || field.form.id || "") : "";
    const choice = field.type === "checkbox" || field.type === "radio" ? "=" + field.value : "";
    return form + "|" + (field.name || field.id) + choice;
  }

  function typed(region) {
    // What the person changed and has not sent yet: kept across the swap.
    const kept = new Map();
    region.querySelectorAll(EDITABLE).forEach((field) => {
      if (!field.name && !field.id) return;
      if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked !== field.defaultChecked) kept.set(fieldKey(field), field.checked);
      } else if (field.tagName === "SELECT") {
        if (Array.from(field.options).some((o) => o.selected !== o.defaultSelected)) kept.set(fieldKey(field), field.value);
      } else if (field.value !== field.defaultValue) {
        kept.set(fieldKey(field), field.value);
      }
    });
    return kept;
  }

  function restore(region, kept) {
    region.querySelectorAll(EDITABLE).forEach((field) => {
      const key = fieldKey(field);
      if (!kept.has(key)) return;
      if (field.type === "checkbox" || field.type === "radio") field.checked = kept.get(key);
      else field.value = kept.get(key);
    });
  }

  function swap(fresh, selector) {
    const current = document.querySelector(selector);
    const next = fresh.querySelector(selector);
    if (!current || !next) return;
    const kept = typed(current);
    const focused = document.activeElement && current.contains(document.activeElement) ? document.activeElement : null;
    const caret = focused && typeof focused.selectionStart === "number" ? [focused.selectionStart, focused.selectionEnd] : null;
    const adopted = document.importNode(next, true);
    restore(adopted, kept);
    current.replaceWith(adopted);
    if (focused && focused.id) {
      const again = document.getElementById(focused.id);
      if (again) {
        again.focus();
        if (caret && typeof again.setSelectionRange === "function") again.setSelectionRange(caret[0], caret[1]);
      }
    }
    if (window.htmx) window.htmx.process(adopted);
    adopted.dispatchEvent(new CustomEvent("live:refreshed", { bubbles: true }));
  }

  async function refresh() {
    if (refreshing) { refreshAgain = true; return refreshing; }
    refreshing = (async () => {
      try {
        const response = await fetch(window.location.href, { headers: { "X-Requested-With": "live" }, credentials: "same-origin" });
        if (!response.ok) return;
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
        regions.forEach((selector) => swap(fresh, selector));
        body.dataset.liveRefreshed = String(Number(body.dataset.liveRefreshed || 0) + 1);
      } finally {
        refreshing = null;
        if (refreshAgain) { refreshAgain = false; refresh(); }
      }
    })();
    return refreshing;
  }

  function notice(event) {
    // "Alex approved REQ-12": only for what someone else did ("REQ-12: escalated" when
    // nobody did, as for the system's own moves).
    if ((event.by && String(event.by.id) === me) || noticed.has(event.id)) return;
    noticed.add(event.id);
    if (event.topic === "notification.added") return;  // the bell says it
    const box = document.getElementById("live-notice");
    if (!box) return;
    const did = DONE[event.action] || String(event.action || "changed").replace(/_/g, " ");
    const what = event.label || event.ref || "this";
    box.textContent = event.by ? event.by.name + " " + did + " " + what : what + ": " + did;
    box.hidden = false;
  }

  // --- the stream numbers -----------------------------------------------------------

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function catchUp() {
    if (epoch !== null) send({ type: "sync", epoch: epoch, cursors: cursors });
  }

  function onEvent(message) {
    const last = cursors[message.stream];
    if (message.epoch !== epoch) {
      // The counters started again (Redis restarted): trust nothing, re-render.
      epoch = message.epoch;
      cursors[message.stream] = message.seq;
      notice(message.event);
      refresh();
      return;
    }
    if (typeof last === "number" && message.seq <= last) return;  // a duplicate
    notice(message.event);
    if (typeof last === "number" && message.seq > last + 1) {
      // A gap: something was lost on the way. Show what is true now, and ask for the rest.
      refresh();
      catchUp();
      return;
    }
    cursors[message.stream] = message.seq;
    refresh();
  }

  function onSkip(message) {
    // A number of a stream this viewer may not hear of (an item outside the delegation it
    // hears that stream through): the cursor moves on, nothing is shown or re-rendered.
    const last = cursors[message.stream];
    if (typeof message.seq !== "number") return;
    if (message.epoch !== epoch) {
      // The counters started again: as for an event, trust nothing and re-render.
      epoch = message.epoch;
      cursors[message.stream] = message.seq;
      refresh();
      return;
    }
    if (typeof last === "number" && message.seq <= last) return;  // a duplicate
    if (typeof last === "number" && message.seq > last + 1) {
      refresh();
      catchUp();
      return;
    }
    cursors[message.stream] = message.seq;
  }

  function onMessage(message) {
    if (message.type === "ready") {
      if (epoch === null) {
        epoch = message.epoch;
        cursors = Object.assign({}, message.streams);
      } else {
        // Reconnected: streams new to this page count from now; the others catch up.
        Object.keys(message.streams).forEach((name) => { if (!(name in cursors)) cursors[name] = message.streams[name]; });
        catchUp();
      }
      body.dataset.liveConnected = "1";
    } else if (message.type === "event") {
      onEvent(message);
    } else if (message.type === "skip") {
      onSkip(message);
    } else if (message.type === "resync") {
      epoch = message.epoch;
      cursors = Object.assign({}, message.streams);
      refresh();
    }
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + path);
    socket.onopen = () => { backoff = 500; };
    socket.onmessage = (message) => onMessage(JSON.parse(message.data));
    socket.onclose = (closing) => {
      body.dataset.liveConnected = "0";
      socket = null;
      if ([4401, 4403, 4404].includes(closing.code)) return;  // not allowed or nothing here: do not retry
      retry = setTimeout(() => { retry = null; connect(); }, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    if (socket) catchUp();
    else if (retry === null) connect();
  });
  // A ping now and then keeps proxies from closing an idle socket.
  setInterval(() => send({ type: "ping" }), 30000);
  connect();
})();
