// The inbox by keyboard: j/k move, x selects, a/r/c/m act, Enter or o opens, / searches,
// ? shows the keys. Every key has a button or link that does the same, so nothing here is
// needed to use the inbox; it only makes triage faster. The list may be swapped (filters,
// live updates), so rows are looked up on each key, never kept.
(function () {
  "use strict";

  let current = -1;
  let pending = null; // the action waiting for its comment (reject, ask for changes)

  const rows = () => Array.from(document.querySelectorAll("#inbox-list tr[data-row]"));
  const form = () => document.getElementById("bulk-form");
  const help = () => document.getElementById("keys-help");

  function focusRow(index) {
    const all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((row, i) => row.classList.toggle("current", i === current));
    all[current].focus();
  }

  function currentRow() {
    const all = rows();
    if (current < 0 || current >= all.length) {
      const focused = all.findIndex((row) => row.contains(document.activeElement));
      current = focused;
    }
    return current >= 0 ? all[current] : null;
  }

  function checkbox(row) {
    return row ? row.querySelector('input[type="checkbox"][name="items"]') : null;
  }

  function selected() {
    return rows().map(checkbox).filter((box) => box && box.checked);
  }

  function showCount() {
    const holder = document.querySelector("[data-selected-count]");
    if (!holder) return;
    const n = selected().length;
    holder.textContent = n ? n + " selected" : "";
  }

  // An action applies to the selected items, or to the current one when none is selected.
  function ensureSelection() {
    if (selected().length) return true;
    const box = checkbox(currentRow());
    if (!box) return false;
    box.checked = true;
    showCount();
    return true;
  }

  function submit(action) {
    const bulk = form();
    if (!bulk || !ensureSelection()) return;
    const button = bulk.querySelector('button[name="action"][value="' + action + '"]');
    if (button) bulk.requestSubmit(button);
  }

  function askComment(action) {
    const bulk = form();
    if (!bulk || !ensureSelection()) return;
    pending = action;
    const comment = document.getElementById("id_bulk_comment");
    comment.dataset.pending = action;
    comment.placeholder = (action === "reject" ? "Why reject?" : "What should change?") + " Then Ctrl+Enter.";
    comment.focus();
  }

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches('input[name="items"]')) showCount();
  });

  document.addEventListener("click", (event) => {
    const opener = event.target.closest && event.target.closest("[data-keys-help]");
    if (opener && help()) help().showModal();
  });

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.id === "id_bulk_comment") {
      event.preventDefault();
      submit(pending || "request_changes");
      return;
    }
    if (event.key === "Escape" && typing(target)) {
      target.blur();
      if (current >= 0) focusRow(current);
      return;
    }
    if (typing(target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (help() && help().open) return; // the dialog handles its own keys (Esc closes it)
    const keys = {
      j: () => focusRow(current + 1),
      k: () => focusRow(current < 0 ? 0 : current - 1),
      x: () => {
        const box = checkbox(currentRow());
        if (box) { box.checked = !box.checked; showCount(); }
      },
      o: () => {
        const link = currentRow() && currentRow().querySelector("a[data-open]");
        if (link) link.click();
      },
      Enter: () => {
        if (!target.matches || !target.matches("tr[data-row]")) return false;
        const link = target.querySelector("a[data-open]");
        if (link) link.click();
      },
      a: () => submit("approve"),
      m: () => submit("claim"),
      r: () => askComment("reject"),
      c: () => askComment("request_changes"),
      "/": () => { const search = document.getElementById("id_q"); if (search) search.focus(); },
      "?": () => { if (help()) help().showModal(); },
    };
    const run = keys[event.key];
    if (run && run() !== false) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", showCount);
  // After htmx or a live update swaps the list, the old position means nothing.
  document.body.addEventListener("htmx:afterSwap", () => { current = -1; showCount(); });
  document.body.addEventListener("live:refreshed", () => { current = -1; showCount(); });
})();
