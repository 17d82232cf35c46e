// The journey step editor. A file, as the Content-Security-Policy refuses inline scripts.
(function () {
  "use strict";
  // Progressive enhancement only: every button works without this (the page is posted and
  // re-rendered by the server, nothing saved). Here a new step type or action shows its
  // fields at once, and the page comes back at the step being edited.
  var editor = document.getElementById("journey-editor");
  if (!editor) { return; }
  var form = editor.closest("form");
  editor.querySelectorAll(".journey-nojs").forEach(function (button) { button.hidden = true; });

  // Where the page should come back to once the server has redrawn the editor (an id).
  function anchorFor(button) {
    var step = button.closest(".journey-step");
    var element = step;
    if (button.name === "_journey_add") {
      // The new step is appended to the list: land in its id box, ready to rename. A
      // focusable target, as the browser moves the focus to whatever the address names.
      var list = button.closest(".journey-list");
      var count = list.querySelectorAll(":scope > ol > li.journey-step").length;
      return "id_" + button.value + "-" + count + "-id";
    }
    if (button.name === "_journey_remove" || button.name === "_journey_up") {
      // The step above keeps its number (and, after a move up, is where this one goes).
      element = (step && step.previousElementSibling) || (step && step.closest(".journey-list"));
    }
    return element ? element.id : "";
  }
  function comeBackTo(id) {
    if (form && id) {
      form.action = window.location.pathname + window.location.search + "#" + id;
    }
  }
  editor.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.matches("select.journey-type, select.journey-action")) { return; }
    var step = select.closest(".journey-step");
    var refresh = step && step.querySelector("button.journey-refresh");
    if (refresh) {
      comeBackTo(step.id);
      refresh.click();
    }
  });
  editor.addEventListener("click", function (event) {
    var button = event.target.closest("button[type=submit]");
    if (button && button.name && button.name.indexOf("_journey_") === 0) {
      comeBackTo(anchorFor(button));
    }
  });

  var textarea = editor.querySelector("textarea[name='steps-yaml']");
  var useYaml = editor.querySelector("input[name='steps-use_yaml']");
  if (textarea && useYaml) {
    textarea.addEventListener("input", function () { useYaml.checked = true; });
  }
})();
