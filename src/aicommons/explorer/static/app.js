// Progressive enhancement only: every page is complete without this file.
// Charts: each <canvas data-chart='{"labels": [...], "label": "...", "values": [...]}'> becomes a
// Chart.js bar chart (the table beside it stays for readers without JavaScript).
// Copy buttons: <button data-copy="element-id"> copies that element's text.
(function () {
  "use strict";

  function drawCharts(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      var spec = JSON.parse(canvas.dataset.chart);
      canvas.dataset.drawn = "1";
      new Chart(canvas, {
        type: "bar",
        data: {
          labels: spec.labels,
          datasets: [{ label: spec.label, data: spec.values.map(Number), backgroundColor: "#2f6f9f", maxBarThickness: 48 }],
        },
        options: { animation: false, responsive: true, plugins: { legend: { display: false } } },
      });
    });
  }

  function enableButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      if (button.dataset.bound) return;
      button.dataset.bound = "1";
      button.addEventListener("click", function () {
        var text = document.getElementById(button.dataset.copy).textContent;
        navigator.clipboard.writeText(text).then(function () {
          button.textContent = "Copied";
        });
      });
    });
    root.querySelectorAll(".js-only").forEach(function (element) {
      element.hidden = false;
    });
  }

  function enhance(root) {
    drawCharts(root);
    enableButtons(root);
  }

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    enhance(event.target);
  });
})();
