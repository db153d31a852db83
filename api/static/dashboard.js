// The dashboards' charts: each <canvas data-chart="name"> is drawn from the report embedded in
// the page (#report-data), the same JSON its report route returns. The table under each chart
// holds the same figures as text; this script only adds the picture.
(function () {
  "use strict";
  var source = document.getElementById("report-data");
  if (!source || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var colours = ["#0b5cad", "#c2410c", "#1a7f37", "#7c3aed", "#b3261e", "#0a7b83", "#8a5a00", "#59636e"];
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false; // no motion to wait for, and none for those who avoid it
  Chart.defaults.plugins.legend.position = "bottom";

  var pct = function (v) { return v === null || v === undefined ? null : Math.round(v * 1000) / 10; };
  var pctAxis = { min: 0, max: 100, ticks: { callback: function (v) { return v + " %"; } } };
  var step = function (i) { return i === null || i === undefined ? "—" : "step " + (i + 1); };
  var line = function (label, values, i, extra) {
    return Object.assign({ label: label, data: values, borderColor: colours[i], backgroundColor: colours[i], tension: 0.2, pointRadius: 3 }, extra || {});
  };

  var charts = {
    "funnel-by-day": function (d) {
      var days = d.by_day.map(function (x) { return x.day; });
      var series = [["Started", "carts_started"], ["Abandoned", "carts_abandoned"], ["Contacted within 24 h", "contacted_within_24h"], ["Recovered", "carts_recovered"]];
      return { type: "line", data: { labels: days, datasets: series.map(function (s, i) {
        return line(s[0], d.by_day.map(function (x) { return x[s[1]]; }), i);
      }) }, options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } };
    },
    "revenue-by-day": function (d) {
      var rows = d.recovered_by_abandonment_day;
      var days = Array.from(new Set(rows.map(function (r) { return r.day; }))).sort();
      var keys = Array.from(new Set(rows.map(function (r) { return step(r.step_index) + " · " + r.channel; })));
      return { type: "bar", data: { labels: days, datasets: keys.map(function (k, i) {
        return { label: k, backgroundColor: colours[i % colours.length], data: days.map(function (day) {
          return rows.filter(function (r) { return r.day === day && step(r.step_index) + " · " + r.channel === k; })
            .reduce(function (sum, r) { return sum + r.revenue; }, 0);
        }) };
      }) }, options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } } };
    },
    "study-test": function (d) {
      var t = d.study_test;
      return { type: "bar", data: {
        labels: ["On-site nudge", "Email within 24 h", "SMS or call within 7 days"],
        datasets: [
          { label: "This store", backgroundColor: colours[0], data: [pct(t.nudged_on_site), pct(t.emailed_within_24h), pct(t.sms_or_call_within_7d)] },
          { label: "The study's retailers", backgroundColor: colours[7], data: [pct(1 / 75), 23, null] }
        ] }, options: { indexAxis: "y", scales: { x: pctAxis } } };
    },
    "nps-csat-trend": function (d) {
      var days = d.trend.map(function (x) { return x.day; });
      return { type: "line", data: { labels: days, datasets: [
        line("NPS", d.trend.map(function (x) { return x.nps; }), 0, { yAxisID: "y", spanGaps: true }),
        line("CSAT, % satisfied", d.trend.map(function (x) { return pct(x.csat); }), 1, { yAxisID: "y1", spanGaps: true, borderDash: [6, 4] })
      ] }, options: { scales: { y: { min: -100, max: 100, title: { display: true, text: "NPS" } }, y1: Object.assign({ position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "CSAT" } }, pctAxis) } } };
    },
    "cases-by-severity": function (d) {
      var s = d.cases_by_severity;
      return { type: "bar", data: { labels: ["Hot", "Normal"], datasets: [{ label: "Cases opened", data: [s.hot, s.normal], backgroundColor: [colours[4], colours[0]] }] },
        options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } };
    },
    "root-causes": function (d) {
      var causes = d.root_causes;
      return { type: "bar", data: { labels: causes.map(function (c) { return c.category.replace(/_/g, " "); }), datasets: [
        { type: "bar", label: "Cases", data: causes.map(function (c) { return c.cases; }), backgroundColor: colours[0], yAxisID: "y", order: 2 },
        line("Cumulative share", causes.map(function (c) { return pct(c.cumulative_share); }), 1, { type: "line", yAxisID: "y1", order: 1 })
      ] }, options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, y1: Object.assign({ position: "right", grid: { drawOnChartArea: false } }, pctAxis) } } };
    },
    "roi": function (d) {
      return { type: "bar", data: { labels: ["Without the closed loop", "With the closed loop"], datasets: [{
        label: "Revenue won back per month", backgroundColor: [colours[7], colours[2]],
        data: [d.roi.without_closed_loop.revenue_won_back_per_month, d.roi.with_closed_loop.revenue_won_back_per_month]
      }] }, options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } } };
    }
  };

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var build = charts[canvas.dataset.chart];
    if (build) {
      new Chart(canvas, build(data));
      canvas.dataset.drawn = "true";
    }
  });
})();
