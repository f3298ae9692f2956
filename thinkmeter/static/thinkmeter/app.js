/* Thinkmeter pages: small behaviours wired from data attributes, so no page needs inline script
 * (the Content-Security-Policy allows scripts from this server only: script-src 'self').
 *
 * - <select data-autosubmit>: submits its form when changed.
 * - <form data-confirm="Question?">: asks before submitting.
 * - <select data-example-for="TEXTAREA-ID">: copies the chosen option's data-text into the
 *   textarea (an attribute: the browser decodes its HTML escapes, unlike a script's text).
 */
(function () {
  "use strict";

  function wire() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        if (select.form) { select.form.submit(); }
      });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
    document.querySelectorAll("select[data-example-for]").forEach(function (select) {
      var area = document.getElementById(select.getAttribute("data-example-for"));
      if (!area) { return; }
      select.addEventListener("change", function () {
        var option = select.options[select.selectedIndex];
        if (option && option.hasAttribute("data-text")) { area.value = option.getAttribute("data-text"); }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wire);
  } else {
    wire();
  }
})();
