// Tessera console: the little the pages need beyond HTML (every page works without it).
// Loaded from the console itself (the Content-Security-Policy allows no inline script).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // A one-time sign-in link carries its code in the fragment, which browsers never send
  // to a server. Take it, drop it from the address bar (and so from history), post it.
  var form = document.getElementById("link-form");
  if (form && location.hash.length > 1) {
    var code = decodeURIComponent(location.hash.slice(1));
    history.replaceState(null, "", location.pathname);
    document.getElementById("code").value = code;
    form.submit();
  }
  // Copy buttons: data-copy names the element whose text to copy.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
        var note = document.getElementById(button.getAttribute("data-copy") + "-copied");
        if (note) { note.textContent = "Copied to the clipboard."; }
      });
    });
  });
});
