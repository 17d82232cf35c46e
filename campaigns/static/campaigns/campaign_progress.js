// Live progress on the campaign change form while the campaign is scheduled or sending: the
// block is re-fetched every 3 seconds (a meta refresh would throw away unsaved edits in the
// form). A file, not an inline script, so the Content-Security-Policy can refuse those; the
// progress URL comes from the script tag's data-progress-url.
(function () {
  "use strict";
  var url = document.currentScript.dataset.progressUrl;
  function refresh() {
    var block = document.querySelector(".field-progress .campaign-progress");
    if (!block) { return; }
    fetch(url, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.firstElementChild;
        if (fresh) { block.replaceWith(fresh); }
        var status = fresh ? fresh.getAttribute("data-status") : "";
        if (status === "sending" || status === "scheduled") { setTimeout(refresh, 3000); }
      })
      .catch(function () { setTimeout(refresh, 6000); });
  }
  setTimeout(refresh, 3000);
})();
