// Run Studio's few behaviours that need JavaScript beyond htmx. No build step.
document.addEventListener("click", (event) => {
  // <button data-copy="#some-input">: copy that input's value (the share link).
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText(source.value).then(
    () => { button.textContent = "Copied"; },
    () => { source.select(); },  // no clipboard (plain http): leave it selected to copy by hand
  );
});

// The column picker: drag a shown column to another place. The new order goes into the state
// form's `cols` and the form is submitted, so htmx swaps the table and pushes the URL, as the ← →
// links do (which keep working without JavaScript, and from the keyboard).
let draggedColumn = null;
document.addEventListener("dragstart", (event) => {
  draggedColumn = event.target.closest?.("#column-list [data-key]") || null;
  if (!draggedColumn) return;
  event.dataTransfer.effectAllowed = "move";
  event.dataTransfer.setData("text/plain", draggedColumn.dataset.key);
  draggedColumn.classList.add("dragging");
});
document.addEventListener("dragover", (event) => {
  const over = event.target.closest?.("#column-list [data-key]");
  if (!draggedColumn || !over) return;
  event.preventDefault();  // allows the drop
  if (over === draggedColumn) return;
  const box = over.getBoundingClientRect();
  const before = event.clientX < box.left + box.width / 2;  // the list runs left to right
  over.parentNode.insertBefore(draggedColumn, before ? over : over.nextSibling);
});
document.addEventListener("drop", (event) => {
  if (draggedColumn && event.target.closest?.("#column-list")) event.preventDefault();
});
document.addEventListener("dragend", () => {
  if (!draggedColumn) return;
  draggedColumn.classList.remove("dragging");
  draggedColumn = null;
  const keys = [...document.querySelectorAll("#column-list [data-key]")].map((item) => item.dataset.key).join(",");
  const form = document.getElementById("state-form");
  if (form && form.elements.cols.value !== keys) {
    form.elements.cols.value = keys;
    form.requestSubmit();
  }
});

// Columns already shown cannot be added again (the list of choices is loaded once, the columns change).
function markShownColumns() {
  const shown = new Set([...document.querySelectorAll("#column-list [data-key]")].map((item) => item.dataset.key));
  document.querySelectorAll("#column-choices option[value]").forEach((option) => {
    if (option.value) option.disabled = shown.has(option.value);
  });
}
document.addEventListener("DOMContentLoaded", markShownColumns);
document.addEventListener("htmx:afterSettle", markShownColumns);

// The state form's empty fields (the filters left at "any") stay out of the URL it pushes, so a
// shared link says only what was chosen. (Without JavaScript the browser sends them all; the
// server reads an empty field as no filter either way.) On a saved view, the fields the view sets
// are sent even when emptied (data-view-keys): the URL's empty value clears the view's, where a
// missing one would bring it back.
document.addEventListener("htmx:configRequest", (event) => {
  if (event.detail.verb !== "get" || event.detail.elt.id !== "state-form") return;
  const form = event.detail.formData;
  const viewKeys = new Set((event.detail.elt.dataset.viewKeys || "").split(" ").filter(Boolean));
  for (const name of new Set(form.keys())) {
    // A multi-select's hidden empty companion (what tells the server "none chosen" without
    // JavaScript) goes too, once an option is chosen.
    const values = form.getAll(name).filter((value) => value !== "");
    form.delete(name);
    values.forEach((value) => form.append(name, value));
    if (!values.length && viewKeys.has(name)) form.append(name, "");
  }
});
