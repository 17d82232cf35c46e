// The segment builder and live preview on the segment change form. A file, as the
// Content-Security-Policy refuses inline scripts; the preview URL comes from the script tag's
// data-preview-url.
(function () {
  "use strict";
  var previewUrl = document.currentScript.dataset.previewUrl;
  var textarea = document.getElementById("id_definition");
  var typeSelect = document.getElementById("builder-type");
  var blocks = document.querySelectorAll(".builder-form");
  function current() {
    return document.querySelector('.builder-form[data-type="' + typeSelect.value + '"]');
  }
  typeSelect.addEventListener("change", function () {
    blocks.forEach(function (block) { block.hidden = block !== current(); });
  });
  function readValue(span) {
    var input = span.querySelector("input, select, textarea");
    var kind = span.dataset.kind;
    var key = span.dataset.key.replace(/^[a-z]+-/, "");
    if (input.type === "checkbox") { return [key, input.checked]; }
    var raw = input.value.trim();
    if (raw === "" || raw === "unknown") { return [key, undefined]; }
    if (raw === "true" || raw === "false") { return [key, raw === "true"]; }
    if (input.type === "number") { return [key, Number(raw)]; }
    if (key === "where" || key === "value") {
      try { return [key, JSON.parse(raw)]; } catch (e) { return [key, raw]; }
    }
    if (span.querySelector("input") && /,/.test(raw) && (key === "zones" || key === "countries" || key === "stages")) {
      return [key, raw.split(",").map(function (s) { return s.trim(); }).filter(Boolean)];
    }
    if (key === "zones" || key === "countries" || key === "stages") { return [key, [raw]]; }
    return [key, raw];
  }
  document.getElementById("builder-add").addEventListener("click", function () {
    var leaf = {type: typeSelect.value};
    current().querySelectorAll("[data-key]").forEach(function (span) {
      var pair = readValue(span);
      if (pair[1] !== undefined) { leaf[pair[0]] = pair[1]; }
    });
    var root;
    try { root = JSON.parse(textarea.value || "{}"); } catch (e) { root = null; }
    if (!root || root.op !== "and" || !Array.isArray(root.conditions)) {
      root = {op: "and", conditions: root && (root.op || root.type) ? [root] : []};
    }
    root.conditions.push(leaf);
    textarea.value = JSON.stringify(root, null, 2);
  });
  document.getElementById("preview-button").addEventListener("click", function () {
    var body = new URLSearchParams();
    body.append("definition", textarea.value);
    body.append("csrfmiddlewaretoken", document.querySelector("[name=csrfmiddlewaretoken]").value);
    fetch(previewUrl, {method: "POST", body: body, credentials: "same-origin"})
      .then(function (response) { return response.json(); })
      .then(function (data) {
        var size = document.getElementById("preview-size");
        var errors = document.getElementById("preview-errors");
        var sample = document.getElementById("preview-sample");
        errors.replaceChildren(); sample.replaceChildren(); size.textContent = "";
        (data.errors || []).forEach(function (message) {
          var li = document.createElement("li"); li.textContent = message; errors.appendChild(li);
        });
        if (data.size !== undefined) {
          size.textContent = data.size + " contacts match now: " + data.in_words;
          data.sample.forEach(function (contact) {
            var li = document.createElement("li"); var a = document.createElement("a");
            a.href = contact.url; a.textContent = contact.label; li.appendChild(a); sample.appendChild(li);
          });
        }
      });
  });
})();
