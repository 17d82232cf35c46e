// The rule editor on the trigger rule change form. A file, as the Content-Security-Policy
// refuses inline scripts.
(function () {
  "use strict";
  // Progressive enhancement of the rule editor: without this the buttons submit the page
  // and the server re-renders it, nothing saved. Templates are server-rendered and escaped;
  // only a row number replaces __prefix__.
  function skipped(input) {
    return input.type === "checkbox" || input.type === "radio" || input.multiple;
  }
  document.querySelectorAll(".rule-editor").forEach(function (editor) {
    var kind = editor.dataset.kind;
    var total = editor.querySelector(".rule-total");
    var list = editor.querySelector(".rule-rows");
    var rowTemplate = editor.querySelector("template.rule-row-template");
    var useJson = editor.querySelector('input[name="' + kind + '-use_json"]');
    var textarea = editor.querySelector("textarea#id_" + kind);
    function withIndex(template, index) {
      return template.innerHTML.replace(/__prefix__/g, String(index));
    }
    function optionsTemplate(type) {
      var found = null;
      editor.querySelectorAll("template.rule-options-template").forEach(function (item) {
        if (item.dataset.type === type) { found = item; }
      });
      return found;
    }
    function enhance(root) {
      root.querySelectorAll(".rule-nojs").forEach(function (element) { element.hidden = true; });
    }
    function showType(row) {
      var holder = row.querySelector(".rule-options");
      var select = row.querySelector("select.rule-type");
      var kept = {};
      holder.querySelectorAll("input, textarea, select").forEach(function (input) {
        if (!skipped(input) && input.value !== "") { kept[input.name] = input.value; }
      });
      var template = optionsTemplate(select.value);
      holder.innerHTML = template ? withIndex(template, row.dataset.index) : "";
      // Options of the same name (event, hours, days...) keep what was typed.
      holder.querySelectorAll("input, textarea, select").forEach(function (input) {
        if (!skipped(input) && Object.prototype.hasOwnProperty.call(kept, input.name)) {
          input.value = kept[input.name];
        }
      });
    }
    enhance(editor);
    editor.addEventListener("change", function (event) {
      if (event.target.matches("select.rule-type")) {
        showType(event.target.closest(".rule-row"));
      }
    });
    editor.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button || !editor.contains(button)) { return; }
      if (button.classList.contains("rule-add")) {
        event.preventDefault();
        var index = Number(total.value) || 0;
        total.value = String(index + 1);
        var holder = document.createElement("ol");
        holder.innerHTML = withIndex(rowTemplate, index);
        var row = holder.firstElementChild;
        enhance(row);
        list.appendChild(row);
        row.querySelector("select.rule-type").focus();
      } else if (button.classList.contains("rule-remove")) {
        event.preventDefault();
        button.closest(".rule-row").remove();
      }
    });
    if (textarea && useJson) {
      textarea.addEventListener("input", function () { useJson.checked = true; });
    }
  });
})();
