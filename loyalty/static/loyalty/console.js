/* The console's charts: each canvas names the JSON its table was rendered from. */
(function () {
  "use strict";
  function draw() {
    document.querySelectorAll("canvas[data-series]").forEach(function (canvas) {
      var spec = JSON.parse(document.getElementById(canvas.dataset.series).textContent);
      var chart = new window.Chart(canvas, {
        type: spec.type,
        data: { labels: spec.labels, datasets: spec.datasets },
        options: {
          animation: false,
          maintainAspectRatio: false,
          spanGaps: true,
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { position: "bottom" } },
        },
      });
      canvas.dataset.drawn = String(chart.data.datasets.reduce(function (n, set) {
        return n + set.data.filter(function (v) { return v !== null; }).length;
      }, 0));
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
