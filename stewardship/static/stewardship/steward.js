/* Keyboard shortcuts for the candidate page (m = merge, n = not a match, s = skip) and
   "select all" for bulk actions. No dependencies. */
(function () {
  "use strict";
  function typing(target) {
    var tag = (target && target.tagName) || "";
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var button = document.querySelector('[data-shortcut="' + event.key.toLowerCase() + '"]');
    if (!button) return;
    event.preventDefault();
    button.click();
  });
  document.addEventListener("change", function (event) {
    var toggle = event.target;
    if (!toggle.matches || !toggle.matches("[data-select-all]")) return;
    var boxes = document.querySelectorAll('input[name="' + toggle.getAttribute("data-select-all") + '"]');
    boxes.forEach(function (box) { box.checked = toggle.checked; });
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var confirmText = event.submitter && event.submitter.getAttribute("data-confirm");
    if (confirmText && !window.confirm(confirmText)) event.preventDefault();
    if (form.dataset.submitted === "1") event.preventDefault();
    else form.dataset.submitted = "1";
  });
})();
