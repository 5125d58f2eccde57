// On a phone the list tables stack (static/css/phone.css): each cell is named by its
// column's heading, copied here into data-label so the CSS can show it. Cells that name
// themselves already (a data-label in the template) keep theirs.
(function () {
  "use strict";
  function label(root) {
    root.querySelectorAll("table.list").forEach((table) => {
      const headings = Array.from(table.querySelectorAll("thead th"), (th) => th.textContent.trim());
      if (!headings.length) return;
      table.querySelectorAll("tbody tr").forEach((row) => {
        let column = 0;
        Array.from(row.children).forEach((cell) => {
          const heading = headings[column];
          if (cell.tagName === "TD" && heading && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", heading);
          column += cell.colSpan || 1;
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", () => label(document));
  // Content swapped in by htmx or refreshed live is labelled too.
  document.addEventListener("htmx:afterSettle", (event) => label(event.target));
  document.addEventListener("live:refreshed", (event) => label(event.target));
})();
