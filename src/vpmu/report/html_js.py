"""The HTML report's packed payloads and its JavaScript.

plotly.js (4.8 MB minified, the only bundle the plotly package ships) and each timeline's data
are embedded gzip-compressed and base64-encoded in ``<script type="application/octet-stream">``
elements; the page unpacks them with the browser's ``DecompressionStream`` (Chrome 80,
Firefox 113, Safari 16.4 and later), so it stays one file that needs no network, at 41% of
plotly.js's size. gzip is run with a fixed mtime and level, so the same input gives the same
bytes.

``LOADER_JS`` defines ``vpmu``: ``vpmu.plot(id, data, layout, config)`` draws a figure once
plotly.js is unpacked; ``vpmu.timeline(id, data_id, layout, config)`` draws a timeline from its
payload (``vpmu.report.html_timeline``) and redraws it at the level of detail of the x range
shown whenever the range changes:

- *single items* when at most ``DETAIL_ITEMS`` segments and markers fall in the range: each
  drawn with its own hover text;
- *buckets* otherwise: the range is cut into buckets 1, 2 or 5 x 10^k ns wide (about
  ``BUCKET_PX`` pixels each, aligned to multiples of the width so that panning keeps them); a
  CPU's bar in a bucket is the state that held its PMU longest there (neighbouring buckets of
  one state merge; the hover gives every state's share), and a marker stands for every event
  of its kind on that CPU in the bucket (from 0.8 times a single item's size for one event to
  1.8 times for the bucket with most, on a log scale; the hover gives the count).

A run stored in buckets already (its payload's ``bucket`` width, ns, is not 0: it had more
items than its budget) is drawn the same way, its stored buckets standing for single items;
a line under the chart says which of these it shows.
"""

from __future__ import annotations

import base64
import gzip
import json
from functools import cache
from typing import Any

from plotly.offline import get_plotlyjs

DETAIL_ITEMS = 5_000
"""A range with at most this many segments and markers shows them one by one."""
BUCKET_PX = 3
"""The width of a bucket on screen, in pixels (at least)."""
GL_POINTS = 1000
"""Traces with more points than this are drawn with WebGL."""


def pack(data: bytes) -> str:
    """``data`` gzip-compressed (level 9, mtime 0: the same bytes for the same data) and
    base64-encoded."""
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


def pack_json(value: Any) -> str:
    """``value`` as compact JSON, packed."""
    return pack(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@cache
def plotly_js_packed() -> str:
    """plotly.js, packed (computed once per process: 0.2 s)."""
    return pack(get_plotlyjs().encode())


def blob(element_id: str, packed: str) -> str:
    """A packed payload as an inert script element the loader reads by id."""
    return f'<script type="application/octet-stream" id="{element_id}">{packed}</script>'


LOADER_JS = """
var vpmu = (function () {
  "use strict";
  var DETAIL_ITEMS = %(detail)d, BUCKET_PX = %(bucket_px)d, GL_POINTS = %(gl)d;

  function unpack(id) {
    if (typeof DecompressionStream === "undefined") {
      return Promise.reject(new Error("this browser has no DecompressionStream (Chrome 80, " +
        "Firefox 113, Safari 16.4 or later are needed to unpack the embedded plotly.js)"));
    }
    var text = atob(document.getElementById(id).textContent);
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text();
  }

  var plotly = unpack("vpmu-plotly-js").then(function (code) {
    var script = document.createElement("script");
    script.textContent = code;
    document.head.appendChild(script);
    return window.Plotly;
  });

  function fail(id) {
    return function (err) {
      var div = document.getElementById(id);
      div.style.height = "auto";
      div.textContent = "This chart could not be drawn: " + err;
      div.className += " failed";
    };
  }

  function plot(id, data, layout, config) {
    plotly.then(function (P) { return P.newPlot(id, data, layout, config); })
      .catch(fail(id));
  }

  function us(ns) {
    return (ns / 1000).toLocaleString("en-US",
      {minimumFractionDigits: 3, maximumFractionDigits: 3});
  }

  function count(n) { return n.toLocaleString("en-US"); }

  function runs(deltas) {  // delta-coded times back to times
    var out = new Array(deltas.length), t = 0;
    for (var i = 0; i < deltas.length; i++) { t += deltas[i]; out[i] = t; }
    return out;
  }

  function lowerBound(a, x) {
    var lo = 0, hi = a.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (a[mid] < x) lo = mid + 1; else hi = mid; }
    return lo;
  }

  function niceBucket(ns) {  // the smallest 1, 2 or 5 x 10^k ns width at least ns
    var w = 1;
    for (;;) {
      if (w >= ns) return w;
      if (2 * w >= ns) return 2 * w;
      if (5 * w >= ns) return 5 * w;
      w *= 10;
    }
  }

  function trace(x, y, text, extra) {
    var t = {type: x.length > GL_POINTS ? "scattergl" : "scatter", x: x, y: y, text: text,
             hovertemplate: "%%{x:,.3f} µs<br>%%{text}"};
    for (var k in extra) t[k] = extra[k];
    return t;
  }

  function segTrace(s, x, y, text) {
    return trace(x, y, text, {mode: "lines", name: s.name,
      line: {color: s.color, width: s.width}});
  }

  function markTrace(m, x, y, text, sizes) {
    return trace(x, y, text, {mode: "markers", name: m.name,
      marker: {color: m.color, symbol: m.symbol, size: sizes}});
  }

  function inRange(d, x0, x1) {  // items drawn one by one in [x0, x1]
    var n = 0;
    d.segs.forEach(function (s) {
      for (var i = 0; i < s.t.length; i++) if (s.t[i] < x1 && s.t[i] + s.dur[i] > x0) n++;
    });
    d.marks.forEach(function (m) { n += lowerBound(m.t, x1 + 1) - lowerBound(m.t, x0); });
    return n;
  }

  function detail(d, x0, x1) {
    var segs = d.segs.map(function (s) {
      var x = [], y = [], text = [];
      for (var i = 0; i < s.t.length; i++) {
        if (s.t[i] >= x1 || s.t[i] + s.dur[i] <= x0) continue;
        x.push(s.t[i] / 1000, (s.t[i] + s.dur[i]) / 1000, null);
        y.push(s.row[i], s.row[i], null);
        text.push(s.text[i], "end", null);
      }
      return segTrace(s, x, y, text);
    });
    var marks = d.marks.map(function (m) {
      var x = [], y = [], text = [], hi = lowerBound(m.t, x1 + 1);
      for (var i = lowerBound(m.t, x0); i < hi; i++) {
        x.push(m.t[i] / 1000); y.push(m.row[i] + m.offset); text.push(m.text[i]);
      }
      return markTrace(m, x, y, text, m.size);
    });
    return segs.concat(marks);
  }

  function bucketMarks(m, x0, x1, w) {
    var groups = [], open = {}, hi = lowerBound(m.t, x1 + 1);
    for (var i = lowerBound(m.t, x0); i < hi; i++) {
      var b = Math.floor(m.t[i] / w), row = m.row[i], g = open[row];
      if (g === undefined || g.b !== b) {
        g = open[row] = {b: b, row: row, n: 0, first: i};
        groups.push(g);
      }
      g.n += m.n ? m.n[i] : 1;
    }
    var x = [], y = [], text = [], sizes = [], most = 1;
    groups.forEach(function (g) { most = Math.max(most, g.n); });
    groups.forEach(function (g) {
      var one = g.n === 1 || (m.n && m.n[g.first] === g.n);
      x.push(one ? m.t[g.first] / 1000 : (g.b + 0.5) * w / 1000);
      y.push(g.row + m.offset);
      text.push(one ? m.text[g.first] :
        count(g.n) + " in " + us(g.b * w) + "–" + us((g.b + 1) * w) + " µs");
      sizes.push((0.8 + Math.log(g.n) / Math.log(most + 1)) * m.size);
    });
    return markTrace(m, x, y, text, sizes);
  }

  function bucketSegs(d, x0, x1, w) {
    var b0 = Math.floor(Math.max(x0, 0) / w), b1 = Math.floor((Math.min(x1, d.end) - 1) / w);
    var nb = Math.max(b1 - b0 + 1, 0), rows = d.rows.length, keys = d.segs.length;
    var held = new Float64Array(rows * keys * nb);  // [row][key][bucket] ns
    d.segs.forEach(function (s, k) {
      for (var i = 0; i < s.t.length; i++) {
        var a = Math.max(s.t[i], b0 * w), e = Math.min(s.t[i] + s.dur[i], (b1 + 1) * w);
        for (var b = Math.floor(a / w); a < e; b++) {
          var end = Math.min(e, (b + 1) * w);
          held[(s.row[i] * keys + k) * nb + b - b0] += end - a;
          a = end;
        }
      }
    });
    var out = d.segs.map(function () { return {x: [], y: [], text: []}; });
    for (var row = 0; row < rows; row++) {
      var run = null;
      for (var b = 0; b <= nb; b++) {
        var lead = -1, most = 0;
        for (var k = 0; b < nb && k < keys; k++) {
          var v = held[(row * keys + k) * nb + b];
          if (v > most) { most = v; lead = k; }
        }
        if (run && lead !== run.k) {
          var o = out[run.k], total = 0, shares = [];
          run.held.forEach(function (v) { total += v; });
          run.held.forEach(function (v, k) { if (v > 0) shares.push([v, k]); });
          shares.sort(function (p, q) { return q[0] - p[0] || p[1] - q[1]; });
          var from = Math.max((b0 + run.b) * w, 0), to = Math.min((b0 + b) * w, d.end);
          o.x.push(from / 1000, to / 1000, null); o.y.push(row, row, null);
          o.text.push(shares.map(function (p) {
            return d.segs[p[1]].short + " " + (100 * p[0] / total).toFixed(1) + "%%";
          }).join(", ") + " of " + us(from) + "–" + us(to) + " µs", "end", null);
          run = null;
        }
        if (lead < 0) continue;
        if (!run) run = {k: lead, b: b, held: new Float64Array(keys)};
        for (k = 0; k < keys; k++) run.held[k] += held[(row * keys + k) * nb + b];
      }
    }
    return d.segs.map(function (s, k) { return segTrace(s, out[k].x, out[k].y, out[k].text); });
  }

  function view(d, x0, x1, px) {
    var n = inRange(d, x0, x1);
    if (n <= DETAIL_ITEMS && d.bucket) {
      return {traces: detail(d, x0, x1), note: count(n) + " bars and markers in " + us(x0) +
        "–" + us(x1) + " µs, in " + count(d.bucket) + " ns buckets as stored: this run's " +
        count(d.items) + " items are more than the page keeps one by one, so zooming in " +
        "shows no finer detail."};
    }
    if (n <= DETAIL_ITEMS) {
      return {traces: detail(d, x0, x1), note: "Single items: " + count(n) + " in " +
        us(x0) + "–" + us(x1) + " µs."};
    }
    var w = Math.max(niceBucket((x1 - x0) * BUCKET_PX / Math.max(px, 100)), d.bucket || 1);
    return {traces: bucketSegs(d, x0, x1, w).concat(d.marks.map(function (m) {
      return bucketMarks(m, x0, x1, w); })),
      note: count(n) + " items in " + us(x0) + "–" + us(x1) + " µs, in " + count(w) +
        " ns buckets: a bar is the state that held the PMU longest in a bucket, a marker " +
        "every event of its kind there (larger: more). Zoom in (drag across the chart) to " +
        "at most " + count(DETAIL_ITEMS) + " items for single ones; double-click for the " +
        "whole run."};
  }

  function decode(d) {
    d.segs.forEach(function (s) { s.t = runs(s.t); });
    d.marks.forEach(function (m) { m.t = runs(m.t); });
    return d;
  }

  function timeline(id, dataId, layout, config) {
    var gd = document.getElementById(id), status = document.getElementById(id + "-status");
    Promise.all([plotly, unpack(dataId)]).then(function (got) {
      var P = got[0], d = decode(JSON.parse(got[1])), shown = null, timer = null;
      function draw(x0, x1) {
        shown = [x0, x1];
        var px = gd._fullLayout ? gd._fullLayout.xaxis._length : gd.clientWidth - 100;
        var v = view(d, x0, x1, px), old = gd.data || [];
        v.traces.forEach(function (t, i) { if (old[i]) t.visible = old[i].visible; });
        var lay = Object.assign({}, layout, {xaxis: Object.assign({}, layout.xaxis,
          {range: [x0 / 1000, x1 / 1000], autorange: false})});
        status.textContent = v.note;
        return P.react(gd, v.traces, lay, config);
      }
      return draw(0, d.end).then(function () {
        gd.on("plotly_relayout", function (e) {
          var range;
          if (e["xaxis.autorange"]) range = [0, d.end];
          else if (e["xaxis.range[0]"] !== undefined || e["xaxis.range"] !== undefined) {
            range = gd._fullLayout.xaxis.range.map(function (x) { return x * 1000; });
          } else return;
          if (range[0] === shown[0] && range[1] === shown[1]) return;
          clearTimeout(timer);
          timer = setTimeout(function () { draw(range[0], range[1]); }, 20);
        });
      });
    }).catch(fail(id));
  }

  return {plot: plot, timeline: timeline, unpack: unpack, view: view, decode: decode};
})();
""".strip() % {"detail": DETAIL_ITEMS, "bucket_px": BUCKET_PX, "gl": GL_POINTS}
"""Defines ``vpmu`` (module docstring)."""
