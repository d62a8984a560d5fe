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
