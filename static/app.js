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
// - #select-all (受注一覧): ticks or clears every order of the page; shown only with JavaScript.
//   On a phone the actions above the list start folded; their summary says how many are ticked.
const selectAll = document.getElementById("select-all");
if (selectAll) {
  const boxes = () => [...document.querySelectorAll("input[form=bulk][name=order]")];
  const count = document.getElementById("selected-count");
  const sync = () => {
    const ticked = boxes().filter((b) => b.checked).length;
    selectAll.checked = ticked > 0 && ticked === boxes().length;
    selectAll.indeterminate = ticked > 0 && ticked < boxes().length;
    if (count) count.textContent = ticked > 0 ? ` ${ticked}件を選択中` : "";
  };
  // On a phone the actions start folded, so the orders come first; the summary counts the ticks.
  const actions = document.getElementById("bulk-actions");
  if (actions && window.matchMedia("(max-width: 40rem)").matches) actions.open = false;
  selectAll.closest("label").hidden = false;
  selectAll.addEventListener("change", () => {
    boxes().forEach((b) => { b.checked = selectAll.checked; });
    sync();
  });
  document.addEventListener("change", (event) => { if (event.target.matches("input[form=bulk][name=order]")) sync(); });
  sync();
}
