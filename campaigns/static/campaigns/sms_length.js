// Live SMS length while typing on the message template form; the same rule as
// campaigns.channels.sms.sms_segments. A file, as the Content-Security-Policy refuses inline
// scripts.
(function () {
  "use strict";
  var body = document.getElementById("id_sms_body");
  if (!body) { return; }
  var basic = "@\u00A3$\u00A5\u00E8\u00E9\u00F9\u00EC\u00F2\u00C7\n\u00D8\u00F8\r\u00C5\u00E5\u0394_\u03A6\u0393\u039B\u03A9\u03A0\u03A8\u03A3\u0398\u039E\u00C6\u00E6\u00DF\u00C9 !\"#\u00A4%&'()*+,-./0123456789:;<=>?" +
    "\u00A1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00C4\u00D6\u00D1\u00DC\u00A7\u00BFabcdefghijklmnopqrstuvwxyz\u00E4\u00F6\u00F1\u00FC\u00E0";
  var extension = "^{}\\[~]|\u20AC\f";
  var out = document.createElement("div");
  out.className = "help";
  out.id = "sms-length-live";
  out.setAttribute("aria-live", "polite");
  body.insertAdjacentElement("afterend", out);
  function pack(units, single, multi) {
    var total = units.reduce(function (a, b) { return a + b; }, 0);
    if (total === 0) { return 0; }
    if (total <= single) { return 1; }
    var segments = 1, used = 0;
    units.forEach(function (size) {
      if (used + size > multi) { segments += 1; used = 0; }
      used += size;
    });
    return segments;
  }
  function update() {
    var chars = Array.from(body.value);
    var gsm = chars.every(function (c) { return basic.indexOf(c) >= 0 || extension.indexOf(c) >= 0; });
    var units, segments, name;
    if (gsm) {
      units = chars.map(function (c) { return extension.indexOf(c) >= 0 ? 2 : 1; });
      segments = pack(units, 160, 153); name = "GSM-7";
    } else {
      units = chars.map(function (c) { return c.codePointAt(0) > 0xFFFF ? 2 : 1; });
      segments = pack(units, 70, 67); name = "UCS-2";
    }
    var total = units.reduce(function (a, b) { return a + b; }, 0);
    out.textContent = name + ", " + total + " characters, " + segments +
      (segments === 1 ? " segment" : " segments") + " (before personalisation)";
  }
  body.addEventListener("input", update);
  update();
})();
