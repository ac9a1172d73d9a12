"""The inline style sheet and script of report.html (written for geopipe; no external assets)."""

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;
max-width:1280px;padding:0 20px 40px;color:#1d1d1f;background:#fff}
header{border-bottom:1px solid #ddd;margin-bottom:8px}h1{font-size:22px;margin:18px 0 4px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #eee}h2 small{font-weight:normal;color:#666}
h3{font-size:15px}nav a{color:#31688e}code{font-size:12px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}th,td{padding:3px 8px;
border-bottom:1px solid #eee;text-align:left;vertical-align:top}td.n{text-align:right;
font-variant-numeric:tabular-nums}th{background:#f6f6f6;position:sticky;top:0}
tr.fail td:first-child{color:#fff;background:#c0392b}tr.warn td:first-child{background:#f5c542}
.badge{padding:1px 8px;border-radius:9px;background:#e8f5e9}.badge.fail{background:#c0392b;color:#fff}
.badge.warn{background:#f5c542}.na{color:#aaa}.note{color:#666;font-size:12px}
.wide{overflow:auto;max-height:420px}details{margin:6px 0}summary{cursor:pointer;color:#31688e}
.maps{display:grid;grid-template-columns:repeat(auto-fill,minmax(310px,1fr));gap:14px;margin-top:10px}
figure.map{margin:0;padding:8px;border:1px solid #e5e5e5;border-radius:6px}
figcaption{font-size:12px;font-weight:600;margin-bottom:4px;min-height:2.9em}
canvas{display:block}.legend{display:flex;flex-wrap:wrap;gap:2px 8px;font-size:11px;margin-top:4px}
.legend span{display:inline-flex;align-items:center;gap:3px}.legend i{width:12px;height:12px;
display:inline-block;border:1px solid #ccc}.cols{display:flex;gap:32px;flex-wrap:wrap}
.bar{display:inline-block;height:9px;background:#35b779;min-width:1px}
#tip{position:fixed;pointer-events:none;background:#222;color:#fff;padding:3px 7px;
border-radius:4px;font-size:12px;display:none;z-index:9}
"""

SCRIPT = r"""
(function () {
  var data = JSON.parse(document.getElementById('mapdata').textContent);
  var MAXW = 300, MAXH = 240;
  function fmt(x) {
    if (x === null || x === undefined) return 'no data';
    var a = Math.abs(x);
    return a >= 1000 ? Math.round(x).toLocaleString('en') : String(+x.toPrecision(3));
  }
  var paths = data.levels.map(function (lv) {
    var out = [];
    for (var u = 0; u < lv.units.length - 1; u++) {
      var p = new Path2D();
      for (var r = lv.units[u]; r < lv.units[u + 1]; r++) {
        var s = lv.rings[r] * 2, e = lv.rings[r + 1] * 2;
        if (e - s < 6) continue;
        p.moveTo(lv.xy[s], lv.xy[s + 1]);
        for (var k = s + 2; k < e; k += 2) p.lineTo(lv.xy[k], lv.xy[k + 1]);
        p.closePath();
      }
      out.push(p);
    }
    return out;
  });
  var tip = document.getElementById('tip');
  document.querySelectorAll('canvas[data-level]').forEach(function (cv) {
    var li = +cv.dataset.level, mi = +cv.dataset.map, lv = data.levels[li], m = lv.maps[mi];
    var scale = Math.min(MAXW / lv.w, MAXH / lv.h), dpr = window.devicePixelRatio || 1;
    var w = Math.max(1, Math.round(lv.w * scale)), h = Math.max(1, Math.round(lv.h * scale));
    cv.width = w * dpr; cv.height = h * dpr; cv.style.width = w + 'px'; cv.style.height = h + 'px';
    var ctx = cv.getContext('2d');
    ctx.setTransform(dpr * scale, 0, 0, dpr * scale, 0, 0);
    var few = paths[li].length <= 2000;
    ctx.lineWidth = 0.6 / scale; ctx.strokeStyle = '#ffffff';
    for (var u = 0; u < paths[li].length; u++) {
      var c = m.classes.charAt(u);
      ctx.fillStyle = c === '-' ? data.noData : m.colors[+c];
      ctx.fill(paths[li][u], 'evenodd');
      if (few) ctx.stroke(paths[li][u]);
    }
    cv.setAttribute('data-drawn', String(paths[li].length));  // read by the tests
    var legend = document.querySelector('.legend[data-level="' + li + '"][data-map="' + mi + '"]');
    var html = '';
    for (var i = 0; i < m.colors.length; i++) {
      html += '<span><i style="background:' + m.colors[i] + '"></i>' + fmt(m.breaks[i]) +
        '–' + fmt(m.breaks[i + 1]) + '</span>';
    }
    if (m.classes.indexOf('-') >= 0) html += '<span><i style="background:' + data.noData + '"></i>no data / suppressed</span>';
    legend.innerHTML = html;
    cv.addEventListener('mousemove', function (ev) {
      var rect = cv.getBoundingClientRect();
      var x = (ev.clientX - rect.left) * dpr, y = (ev.clientY - rect.top) * dpr;
      for (var u = 0; u < paths[li].length; u++) {
        if (ctx.isPointInPath(paths[li][u], x, y, 'evenodd')) {
          var c = m.classes.charAt(u);
          tip.textContent = lv.labels[u] + ': ' + (lv.values ? fmt(lv.values[m.id][u]) :
            c === '-' ? 'no data' : fmt(m.breaks[+c]) + '–' + fmt(m.breaks[+c + 1]));
          tip.style.left = (ev.clientX + 12) + 'px'; tip.style.top = (ev.clientY + 12) + 'px';
          tip.style.display = 'block';
          return;
        }
      }
      tip.style.display = 'none';
    });
    cv.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  });
})();
"""
