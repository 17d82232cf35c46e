// django_celery_beat's periodic task form: under the crontab select, the schedule in words.
// Replaces the package's inline script (templates/admin/djcelery/change_periodictask_form.html)
// and adds the words as text, never as HTML.
(function () {
  "use strict";
  var $ = django.jQuery;
  var data = document.getElementById("readable-crontabs");
  var readable = data ? JSON.parse(data.textContent) : {};
  var help = $(".field-crontab .help");
  var original = help.text().trim();
  $(".field-crontab_translation").hide();
  $(".field-crontab").on("change", function () {
    var words = readable[$("#id_crontab").val()];
    help.empty().append(
      document.createTextNode(original),
      document.createElement("br"),
      document.createTextNode("Translation: " + (words === undefined ? "" : words))
    );
  });
})();
