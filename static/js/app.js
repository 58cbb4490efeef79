// Small progressive enhancements; every page works without them.
document.addEventListener("submit", (event) => {
  // A scene row saves field by field; Enter in one of its inputs must not post the whole form.
  if (event.target.matches("form[data-no-submit]")) {
    event.preventDefault();
    return;
  }
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// A button that empties a region (e.g. "Discard" on a what-if comparison).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-clear]");
  if (button) document.querySelector(button.dataset.clear)?.replaceChildren();
});

// A field's message arrives out of band; mark its input invalid (or valid again) for styling and readers.
// htmx hands over the element that was replaced (detached, old text): read its successor, by id.
document.addEventListener("htmx:oobAfterSwap", (event) => {
  const id = event.detail.target?.id;
  const message = id && document.getElementById(id);
  if (!message?.dataset?.for) return;
  const input = document.getElementById(message.dataset.for);
  if (!input) return;
  if (message.textContent.trim()) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
});

// Drag and drop to reorder scenes; the order persists with one POST of every scene id.
(() => {
  let dragged = null;
  document.addEventListener("dragstart", (event) => {
    const row = event.target.closest?.(".scene[draggable=true]");
    if (!row || event.target.closest("input, select, textarea")) return;
    dragged = row;
    row.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
  });
  document.addEventListener("dragover", (event) => {
    const row = event.target.closest?.(".scene");
    if (!dragged || !row || row === dragged) return;
    event.preventDefault();
    const after = event.clientY > row.getBoundingClientRect().top + row.offsetHeight / 2;
    row.parentNode.insertBefore(dragged, after ? row.nextSibling : row);
  });
  document.addEventListener("dragend", () => {
    if (!dragged) return;
    dragged.classList.remove("dragging");
    const list = dragged.closest(".scene-list");
    dragged = null;
    const values = {};
    const ids = [...list.querySelectorAll(".scene[data-scene-id]")].map((row) => row.dataset.sceneId);
    values.scene = ids;
    htmx.ajax("POST", list.dataset.reorderUrl, { values, swap: "none" }).then(() => {
      list.querySelectorAll(".scene-number").forEach((n, i) => { n.textContent = i + 1; });
    });
  });
})();
