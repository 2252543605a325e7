// Progressive enhancement only: every page works without JavaScript.
// - [data-copy-target]: a コピー button copies the text of the element with that id.
// - form.confirm[data-confirm]: asks before submitting a destructive form.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copyTarget);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    const label = button.textContent;
    button.textContent = "コピーしました";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.matches("form.confirm[data-confirm]") && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
