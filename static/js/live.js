// Live updates: listens on the page's WebSocket and refreshes what changed.
// Delivery is at least once, so events are de-duplicated by their id.
(function () {
  "use strict";
  const body = document.body;
  const path = body.dataset.live;
  if (!path || !("WebSocket" in window)) return;
  const seen = new Set();
  let backoff = 500;

  async function refreshRegion(selector) {
    const response = await fetch(window.location.href, { headers: { "X-Requested-With": "live" }, credentials: "same-origin" });
    if (!response.ok) return;
    const html = await response.text();
    const fresh = new DOMParser().parseFromString(html, "text/html").querySelector(selector);
    const current = document.querySelector(selector);
    if (!fresh || !current) return;
    // What the person selected and where they were stay as they were.
    const checked = new Set(Array.from(current.querySelectorAll("input[type=checkbox]:checked"), (box) => box.name + "=" + box.value));
    const focused = document.activeElement && current.contains(document.activeElement) && document.activeElement.id;
    fresh.querySelectorAll("input[type=checkbox]").forEach((box) => { if (checked.has(box.name + "=" + box.value)) box.checked = true; });
    current.replaceWith(fresh);
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    fresh.dispatchEvent(new CustomEvent("live:refreshed", { bubbles: true }));
    body.dataset.liveRefreshed = String(Number(body.dataset.liveRefreshed || 0) + 1);
  }

  function onEvent(event) {
    if (!event || seen.has(event.id)) return;
    seen.add(event.id);
    const region = body.dataset.liveRegion;
    if (region) {
      refreshRegion(region);
    } else {
      const banner = document.getElementById("live-banner");
      if (banner) banner.hidden = false;
    }
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + path);
    socket.onopen = () => { backoff = 500; body.dataset.liveConnected = "1"; };
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "event") onEvent(data.event);
    };
    socket.onclose = (closing) => {
      body.dataset.liveConnected = "0";
      if (closing.code === 4401 || closing.code === 4403) return;  // not allowed: do not retry
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }
  connect();
})();
