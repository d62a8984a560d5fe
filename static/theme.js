// The colour theme. <html data-theme-choice> is the user's choice (auto, light or dark), written by the server;
// <html data-bs-theme> is what Bootstrap's colour modes and studio.css read. The inline script in base.html
// resolves "auto" before the first paint; this file keeps following the OS while the choice is "auto", and
// applies the theme toggle's answer (htmx) without a reload. No build step.
(() => {
  const root = document.documentElement;
  const prefersDark = window.matchMedia("(prefers-color-scheme: dark)");

  function apply(choice) {
    root.dataset.themeChoice = choice;
    const theme = choice === "auto" ? (prefersDark.matches ? "dark" : "light") : choice;
    document.querySelectorAll(".theme-switch button[name=theme]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.value === choice));
    });
    if (root.dataset.bsTheme === theme) return;
    root.dataset.bsTheme = theme;
    // charts.js redraws its canvases, whose colours CSS cannot reach
    document.dispatchEvent(new CustomEvent("studio:themechange", { detail: { theme } }));
  }

  prefersDark.addEventListener("change", () => {
    if (root.dataset.themeChoice === "auto") apply("auto");
  });
  // The toggle's htmx answer names the chosen theme in HX-Trigger (studio/account_views.py, theme_set).
  document.addEventListener("studio:theme", (event) => apply(event.detail.value));
})();
