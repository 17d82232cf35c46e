// The journey step editor. A file, as the Content-Security-Policy refuses inline scripts.
(function () {
  "use strict";
  // Progressive enhancement only: every button works without this (the page is posted and
  // re-rendered by the server, nothing saved). Here a new step type or action shows its
  // fields at once, and the page comes back scrolled to the step being edited.
  var editor = document.getElementById("journey-editor");
  if (!editor) { return; }
  var form = editor.closest("form");
  editor.querySelectorAll(".journey-nojs").forEach(function (button) { button.hidden = true; });
  function keepPlace(element) {
    var anchor = element.closest(".journey-step, .journey-arm, .journey-list");
    if (form && anchor && anchor.id) {
      form.action = window.location.pathname + window.location.search + "#" + anchor.id;
    }
  }
  editor.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.matches("select.journey-type, select.journey-action")) { return; }
    var step = select.closest(".journey-step");
    var refresh = step && step.querySelector("button.journey-refresh");
    if (refresh) {
      keepPlace(step);
      refresh.click();
    }
  });
  editor.addEventListener("click", function (event) {
    var button = event.target.closest("button[type=submit]");
    if (button && button.name && button.name.indexOf("_journey_") === 0) { keepPlace(button); }
  });
  var textarea = editor.querySelector("textarea[name='steps-yaml']");
  var useYaml = editor.querySelector("input[name='steps-use_yaml']");
  if (textarea && useYaml) {
    textarea.addEventListener("input", function () { useYaml.checked = true; });
  }
})();
