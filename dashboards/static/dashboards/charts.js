/* Thinkmeter dashboards: draw the server-built Plotly figures and keep filters in the URL.
 *
 * Each chart is a <div class="chart" data-figure="ID"> next to a
 * <script type="application/json" id="ID"> holding fig.to_json(). Plotly comes from the
 * project's own server (/assets/plotly-*.min.js), never from a CDN.
 */
(function () {
  "use strict";

  var CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d", "toggleSpikelines", "hoverCompareCartesian"],
  };

  function drawCharts() {
    document.querySelectorAll(".chart[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-figure"));
      if (!source) { return; }
      var figure = JSON.parse(source.textContent);
      Plotly.newPlot(el, figure.data, figure.layout, CONFIG).then(function () {
        el.setAttribute("data-rendered", "1");
      });
    });
  }

  function submitClean(form) {
    // Leave empty fields out of the URL so shared links stay short.
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.name && !field.value) { field.disabled = true; }
    });
    form.submit();
  }

  function wireFilters() {
    var form = document.getElementById("filters");
    if (!form) { return; }
    var range = form.querySelector("select[name=range]");
    var custom = form.querySelector(".custom");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      submitClean(form);
    });
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () {
        if (select === range && range.value === "custom") {
          if (custom) {
            custom.hidden = false;
            var from = custom.querySelector("input[name=from]");
            if (from) { from.focus(); }
          }
          return;
        }
        if (select === range && custom) {
          custom.querySelectorAll("input").forEach(function (input) { input.value = ""; });
        }
        submitClean(form);
      });
    });
    form.querySelectorAll("input[type=date]").forEach(function (input) {
      input.addEventListener("change", function () {
        var from = form.querySelector("input[name=from]");
        var to = form.querySelector("input[name=to]");
        if (from && to && from.value && to.value) { submitClean(form); }
      });
    });
  }

  function wireRows() {
    document.querySelectorAll("tr[data-href]").forEach(function (row) {
      row.classList.add("clickable");
      row.addEventListener("click", function (event) {
        if (event.target.closest("a")) { return; }
        window.location.href = row.getAttribute("data-href");
      });
    });
    document.querySelectorAll("[data-action=print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  }

  function wireCatalogSearch() {
    var search = document.getElementById("catalog-search");
    var provider = document.getElementById("catalog-provider");
    var table = document.getElementById("catalog-table");
    if (!search || !table) { return; }
    function apply() {
      var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      var wanted = provider ? provider.value : "";
      table.querySelectorAll("tbody tr").forEach(function (row) {
        var text = row.getAttribute("data-search") || "";
        var ok = (!wanted || row.getAttribute("data-provider") === wanted) &&
          words.every(function (w) { return text.indexOf(w) !== -1; });
        row.hidden = !ok;
      });
    }
    search.addEventListener("input", apply);
    if (provider) { provider.addEventListener("change", apply); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireFilters();
    wireCatalogSearch();
    wireRows();
    if (window.Plotly) { drawCharts(); }
  });
})();
