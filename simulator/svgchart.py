"""Interactive charts as inline SVG: one self-contained HTML file, no library, works offline.

Each line chart is an ``<svg class="chart">`` whose lines carry ``<title>`` hover text, with its
data in a ``data-chart`` attribute; ``SCRIPT`` (a few lines of our own JavaScript, inlined once
per page) adds a crosshair with every series' value under the pointer and a legend whose
entries hide and show their series. Without JavaScript the chart and its titles still show.
Vertical markers (events, the first IpNotEnough) and horizontal levels (a vSwitch's capacity)
are labelled inside the plot area, so no label is clipped at an edge.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from simulator.humanize import clock, count, duration, number

W, H = 900, 300                      # viewBox; the page scales it to its width
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 10, 34
CHAR_PX = 6.2                        # average width of an 11 px label character
MAX_POINTS = 1500                    # per series; longer series keep each bucket's min and max


@dataclass
class Series:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    dash: str = ""                   # SVG stroke-dasharray, "" for a solid line
    step: bool = False               # drawn as steps (a CDF)


@dataclass
class Marker:
    x: float
    label: str
    color: str = "#777"


@dataclass
class Level:
    y: float
    label: str
    color: str


@dataclass
class LineChart:
    chart_id: str
    series: list[Series]
    x_format: str = "clock"          # "clock" (simulated time) or "duration" (seconds)
    y_format: str = "count"          # "count" or "fraction"
    y_label: str = ""
    log_x: bool = False
    markers: list[Marker] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)


def thin(xs: Sequence[float], ys: Sequence[float],
         limit: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """At most ~``limit`` points: each bucket keeps its lowest and highest point, in time order,
    so a spike survives where a stride would skip it."""
    n = len(xs)
    if n <= limit:
        return list(xs), list(ys)
    size = math.ceil(2 * n / limit)
    out_x: list[float] = []
    out_y: list[float] = []
    for start in range(0, n, size):
        idx = [i for i in range(start, min(n, start + size)) if not math.isnan(ys[i])]
        if not idx:
            out_x.append(xs[start])
            out_y.append(math.nan)
            continue
        lo, hi = min(idx, key=lambda i: ys[i]), max(idx, key=lambda i: ys[i])
        for i in sorted({lo, hi}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return out_x, out_y


def nice_step(span: float, ticks: int = 5) -> float:
    """A 1, 2 or 5 times 10^k step giving about ``ticks`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10.0 ** math.floor(math.log10(raw))
    return next(float(m * mag) for m in (1, 2, 5, 10) if m * mag >= raw)


def time_step(span: float) -> float:
    """A tick step for simulated time: whole minutes or hours where possible."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600):
        if span / step <= 8:
            return float(step)
    return 43200.0


class _Scale:
    def __init__(self, lo: float, hi: float, px0: float, px1: float, log: bool = False):
        self.log = log
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        if self.hi <= self.lo:
            self.hi = self.lo + 1
        self.px0, self.px1 = px0, px1

    def __call__(self, v: float) -> float:
        v = math.log10(v) if self.log else v
        return self.px0 + (v - self.lo) / (self.hi - self.lo) * (self.px1 - self.px0)

    def to_json(self) -> dict[str, float | bool]:
        return {"lo": self.lo, "hi": self.hi, "px0": self.px0, "px1": self.px1, "log": self.log}


def _percent(v: float) -> str:
    return f"{v * 100:.0f} %"


def _fmt(kind: str) -> Callable[[float], str]:
    formats: dict[str, Callable[[float], str]] = {
        "clock": clock, "duration": duration, "count": count, "fraction": _percent}
    return formats[kind]


def _x_range(chart: LineChart) -> tuple[float, float]:
    xs = [x for s in chart.series for x in s.xs if not chart.log_x or x > 0]
    if not xs:
        return (0.1, 10.0) if chart.log_x else (0.0, 1.0)
    lo, hi = min(xs), max(xs)
    if chart.log_x:
        return 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))
    return lo, hi


def _y_max(chart: LineChart) -> float:
    if chart.y_format == "fraction":
        return 1.0
    ys = [y for s in chart.series for y in s.ys if not math.isnan(y)]
    top = max([*ys, *(lv.y for lv in chart.levels), 1.0])
    step = nice_step(top * 1.08)
    return math.ceil(top * 1.08 / step) * step


def _x_ticks(chart: LineChart, lo: float, hi: float) -> list[float]:
    if chart.log_x:
        return [10.0 ** k for k in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]
    step = time_step(hi - lo) if chart.x_format == "clock" else nice_step(hi - lo)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _x_tick_label(chart: LineChart, v: float) -> str:
    """HH:MM for time; a log axis of seconds in one unit per tick ("100 ms", "1,000 s")."""
    if chart.x_format == "clock":
        return clock(v)[:-3]
    if chart.log_x and v >= 1:
        return f"{count(v)} s"
    return _fmt(chart.x_format)(v)


def _axes(chart: LineChart, sx: _Scale, sy: _Scale, lo: float, hi: float, top: float) -> str:
    parts = []
    fy = _fmt(chart.y_format)
    step = nice_step(top) if chart.y_format != "fraction" else 0.25
    ticks = [i * step for i in range(int(top / step + 1e-9) + 1)]
    for v in ticks:
        y = sy(v)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{html.escape(fy(v))}</text>')
    for v in _x_ticks(chart, lo, hi):
        x = sx(v)
        anchor = "end" if x > W - RIGHT - 30 else "middle"        # the last label stays inside
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
                     f'y2="{H - BOTTOM}"/><text class="tick" x="{x:.1f}" y="{H - BOTTOM + 15}" '
                     f'text-anchor="{anchor}">{html.escape(_x_tick_label(chart, v))}</text>')
    if chart.y_label:
        parts.append(f'<text class="axis" transform="translate(13,{(TOP + H - BOTTOM) / 2}) '
                     f'rotate(-90)" text-anchor="middle">{html.escape(chart.y_label)}</text>')
    return "".join(parts)


def _path(s: Series, sx: _Scale, sy: _Scale, log_x: bool) -> str:
    """SVG path data; NaN breaks the line (a vSwitch added mid-run starts where it starts)."""
    out, pen, prev_y = [], "M", 0.0
    for x, y in zip(s.xs, s.ys, strict=True):
        if math.isnan(y) or (log_x and x <= 0):
            pen = "M"
            continue
        px, py = sx(x), sy(y)
        if s.step and pen == "L":
            out.append(f"L{px:.1f},{prev_y:.1f}")
        out.append(f"{pen}{px:.1f},{py:.1f}")
        pen, prev_y = "L", py
    return "".join(out)


def _markers(chart: LineChart, sx: _Scale) -> str:
    """Vertical lines with labels stacked in rows so neighbours do not overlap; a label near
    the right edge runs leftwards from its line."""
    parts: list[str] = []
    row_ends: list[float] = []
    for m in sorted(chart.markers, key=lambda m: m.x):
        x = sx(m.x)
        width = len(m.label) * CHAR_PX + 6
        right = x + width <= W - RIGHT
        span = (x, x + width) if right else (x - width, x)
        row = next((i for i, end in enumerate(row_ends) if span[0] > end), len(row_ends))
        row_ends[row:row + 1] = [span[1]]
        y = TOP + 12 + 13 * row
        tx, anchor = (x + 3, "start") if right else (x - 3, "end")
        parts.append(f'<g class="marker"><title>{html.escape(m.label)}</title>'
                     f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{H - BOTTOM}" '
                     f'stroke="{m.color}" stroke-dasharray="3,3"/><text x="{tx:.1f}" y="{y}" '
                     f'text-anchor="{anchor}" fill="{m.color}">{html.escape(m.label)}</text></g>')
    return "".join(parts)


def _levels(chart: LineChart, sy: _Scale) -> str:
    parts = []
    for lv in chart.levels:
        y = sy(lv.y)
        parts.append(f'<g class="level"><title>{html.escape(lv.label)}</title>'
                     f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{lv.color}" stroke-width="5" stroke-opacity=".25"/>'
                     f'<text x="{W - RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end" '
                     f'fill="{lv.color}">{html.escape(lv.label)}</text></g>')
    return "".join(parts)


def _data(chart: LineChart, sx: _Scale, sy: _Scale) -> str:
    """What the script needs for the crosshair: scales, formats, every series' points."""
    def clean(v: float) -> float | None:
        return None if math.isnan(v) else round(v, 4)
    doc = {"sx": sx.to_json(), "sy": sy.to_json(), "xf": chart.x_format, "yf": chart.y_format,
           "series": [{"label": s.label, "color": s.color, "x": [round(x, 4) for x in s.xs],
                       "y": [clean(y) for y in s.ys]} for s in chart.series]}
    return html.escape(json.dumps(doc, separators=(",", ":")))


def line_chart(chart: LineChart) -> str:
    """The chart as ``<figure>``: the SVG, then a legend of buttons (click: hide/show)."""
    chart.series = [Series(s.label, *thin(s.xs, s.ys), s.color, s.dash, s.step)
                    for s in chart.series]
    lo, hi = _x_range(chart)
    top = _y_max(chart)
    sx = _Scale(lo, hi, LEFT, W - RIGHT, chart.log_x)
    sy = _Scale(0.0, top, H - BOTTOM, TOP)
    lines = "".join(
        f'<g class="series" data-i="{i}"><path d="{_path(s, sx, sy, chart.log_x)}" '
        f'stroke="{s.color}" stroke-dasharray="{s.dash}"><title>{html.escape(s.label)}</title>'
        f"</path></g>" for i, s in enumerate(chart.series))
    legend = "".join(
        f'<button type="button" data-i="{i}"><svg width="26" height="10"><line x1="0" x2="26" '
        f'y1="5" y2="5" stroke="{s.color}" stroke-width="2" stroke-dasharray="{s.dash}"/>'
        f"</svg>{html.escape(s.label)}</button>" for i, s in enumerate(chart.series))
    return (f'<figure class="plot"><svg class="chart" id="{chart.chart_id}" '
            f'viewBox="0 0 {W} {H}" role="img" data-chart="{_data(chart, sx, sy)}">'
            f'{_axes(chart, sx, sy, lo, hi, top)}{_levels(chart, sy)}{lines}'
            f'{_markers(chart, sx)}<line class="cursor" x1="0" x2="0" y1="{TOP}" '
            f'y2="{H - BOTTOM}" visibility="hidden"/></svg>'
            f'<figcaption class="legend">{legend}</figcaption></figure>')


@dataclass
class Bar:
    label: str                       # the row
    parts: list[tuple[str, float, str]]   # (segment name, value, color)


def bar_chart(chart_id: str, bars: Sequence[Bar], unit: str) -> str:
    """Horizontal stacked bars; every segment says what it is on hover."""
    return _stacked_bars(chart_id, bars, 1.0, lambda v: count(v, unit), count)


def _stacked_bars(chart_id: str, bars: Sequence[Bar], floor: float,
                  hover: Callable[[float], str], total: Callable[[float], str]) -> str:
    """The bars of ``bar_chart`` and ``value_bar_chart``: ``hover`` words a segment's value,
    ``total`` a bar's; the scale reaches at least ``floor``."""
    label_w, row_h = 210, 22
    top = max([sum(v for _, v, _ in b.parts) for b in bars] + [floor])
    scale = _Scale(0.0, top, label_w, W - RIGHT - 60)
    rows = []
    for i, b in enumerate(bars):
        y, x0 = TOP + i * row_h, 0.0
        rows.append(f'<text class="tick" x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
                    f"{html.escape(b.label)}</text>")
        for name, v, color in b.parts:
            x, w = scale(x0), scale(x0 + v) - scale(x0)
            rows.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 0.5):.1f}" '
                        f'height="{row_h - 6}" fill="{color}"><title>{html.escape(b.label)}: '
                        f"{html.escape(hover(v))} {html.escape(name)}</title></rect>")
            x0 += v
        rows.append(f'<text class="tick" x="{scale(x0) + 4:.1f}" y="{y + 15}">'
                    f"{html.escape(total(x0))}</text>")
    height = TOP + len(bars) * row_h + 8
    return (f'<figure class="plot"><svg class="bars" id="{chart_id}" viewBox="0 0 {W} {height}" '
            f'role="img">{"".join(rows)}</svg></figure>')


@dataclass
class Dot:
    """One point of a scatter chart; ``emphasis`` rings it and bolds its label (the pick)."""

    label: str
    x: float
    y: float
    color: str = "#1f77b4"
    emphasis: bool = False


def _scatter_fmt(kind: str) -> Callable[[float], str]:
    fmt = number if kind == "number" else _fmt(kind)
    return lambda v: "0" if v == 0 else fmt(v)


def _span(values: Sequence[float]) -> tuple[float, float]:
    """Round axis ends around ``values``: from 0, unless every value sits in the top half (then
    from a round number below the lowest, so close results are told apart)."""
    lo, hi = min(values, default=0.0), max([*values, 1e-9])
    bottom = 0.0
    if lo > hi / 2:
        margin = (hi - lo) * 0.15 or hi * 0.05
        step = nice_step(hi - lo + 2 * margin)
        bottom = max(0.0, math.floor((lo - margin) / step) * step)
    step = nice_step((hi - bottom) * 1.08)
    return bottom, math.ceil((hi + (hi - bottom) * 0.08) / step) * step


def pareto_front(dots: Sequence[Dot]) -> list[Dot]:
    """The dots no other dot beats on both axes (lower x and lower y both better), by x."""
    front: list[Dot] = []
    for d in sorted(dots, key=lambda d: (d.x, d.y)):
        if not front or d.y < front[-1].y:
            front.append(d)
    return front


def _scatter_axes(sx: _Scale, sy: _Scale, fx: Callable[[float], str],
                  fy: Callable[[float], str], x_label: str, y_label: str) -> str:
    parts = []
    for v in _ticks(sy.lo, sy.hi):
        y = sy(v)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{html.escape(fy(v))}</text>')
    for v in _ticks(sx.lo, sx.hi):
        x = sx(v)
        anchor = "end" if x > W - RIGHT - 30 else "middle"
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
                     f'y2="{H - BOTTOM}"/><text class="tick" x="{x:.1f}" y="{H - BOTTOM + 14}" '
                     f'text-anchor="{anchor}">{html.escape(fx(v))}</text>')
    parts.append(f'<text class="axis" x="{(LEFT + W - RIGHT) / 2}" y="{H - 3}" '
                 f'text-anchor="middle">{html.escape(x_label)}</text>'
                 f'<text class="axis" transform="translate(13,{(TOP + H - BOTTOM) / 2}) '
                 f'rotate(-90)" text-anchor="middle">{html.escape(y_label)}</text>')
    return "".join(parts)


def _ticks(lo: float, hi: float) -> list[float]:
    step = nice_step(hi - lo)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


_DotGroup = tuple[float, float, list[Dot]]     # pixel x, pixel y, the dots drawn there


def _dot_groups(dots: Sequence[Dot], sx: _Scale, sy: _Scale) -> list[_DotGroup]:
    """Dots drawn at the same pixel share one mark and one label (equal results do happen:
    two pool sizes the workload never tells apart)."""
    groups: dict[tuple[int, int], list[Dot]] = {}
    for d in dots:
        groups.setdefault((round(sx(d.x)), round(sy(d.y))), []).append(d)
    return [(float(px), float(py), ds) for (px, py), ds in groups.items()]


def _dot_label(px: float, py: float, text: str, placed: list[tuple[float, float, float]]
               ) -> tuple[float, float, str]:
    """Where a dot's label goes (x, y, anchor): beside the dot, moved up or down until it
    overlaps no label placed before (``placed``: x, y, width of each)."""
    width = len(text) * CHAR_PX
    right = px + 9 + width <= W - RIGHT
    x0 = px + 9 if right else px - 9 - width
    for dy in (0, 12, -12, 24, -24, 36, -36):
        y = py + 4 + dy
        if all(abs(y - oy) >= 12 or x0 + width < ox or x0 > ox + ow for ox, oy, ow in placed):
            break
    placed.append((x0, y, width))
    return (px + 9, y, "start") if right else (px - 9, y, "end")


def scatter_chart(chart_id: str, dots: Sequence[Dot], *, x_label: str, y_label: str,
                  x_format: str = "number", y_format: str = "duration",
                  levels: Sequence[Level] = (), front: bool = False) -> str:
    """Labelled dots on linear axes (formats: number, count, duration, fraction), with
    horizontal ``levels`` (a target) and, when ``front``, the Pareto front as a dashed line;
    each dot says what it is and its values on hover. Static: no script needed."""
    fx, fy = _scatter_fmt(x_format), _scatter_fmt(y_format)
    sx = _Scale(*_span([d.x for d in dots]), LEFT, W - RIGHT)
    sy = _Scale(*_span([d.y for d in dots] + [lv.y for lv in levels]), H - BOTTOM, TOP)
    parts = [_scatter_axes(sx, sy, fx, fy, x_label, y_label)]
    placed: list[tuple[float, float, float]] = []
    for lv in levels:
        y, width = sy(lv.y), len(lv.label) * CHAR_PX
        placed.append((W - RIGHT - 4 - width, y - 4, width))
        parts.append(f'<g class="level"><title>{html.escape(lv.label)}</title><line x1="{LEFT}" '
                     f'x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{lv.color}" '
                     f'stroke-dasharray="6,4"/><text x="{W - RIGHT - 4}" y="{y - 4:.1f}" '
                     f'text-anchor="end" fill="{lv.color}">{html.escape(lv.label)}</text></g>')
    if front and len(dots) > 1:
        pts = " ".join(f"{sx(d.x):.1f},{sy(d.y):.1f}" for d in pareto_front(dots))
        parts.append(f'<polyline class="front" points="{pts}" fill="none" stroke="#999" '
                     f'stroke-dasharray="4,3"><title>Pareto front: no other point is lower on '
                     f"both axes</title></polyline>")
    groups = sorted(_dot_groups(dots, sx, sy), key=lambda g: (g[1], g[0]))
    placed += [(px - 7, py + 4, 14) for px, py, _ in groups]     # no label over another dot
    for px, py, group in groups:
        strong = any(d.emphasis for d in group)
        text = ", ".join(d.label for d in group)
        tip = "; ".join(f"{d.label}: {fy(d.y)}, {fx(d.x)}" for d in group)
        ring = ' stroke="#000" stroke-width="2.5"' if strong else ""
        weight = ' font-weight="bold"' if strong else ""
        tx, ty, anchor = _dot_label(px, py, text, placed)
        parts.append(f'<g class="dot"><title>{html.escape(tip)}</title><circle cx="{px:.1f}" '
                     f'cy="{py:.1f}" r="{7 if strong else 5}" fill="{group[0].color}"{ring}/>'
                     f'<text class="tick" x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}"'
                     f"{weight}>{html.escape(text)}</text></g>")
    return (f'<figure class="plot"><svg class="scatter" id="{chart_id}" viewBox="0 0 {W} {H}" '
            f'role="img">{"".join(parts)}</svg></figure>')


def value_bar_chart(chart_id: str, bars: Sequence[Bar], unit: str) -> str:
    """Horizontal stacked bars like ``bar_chart``, for small non-whole values (API calls per
    pod): totals and hover text keep three significant digits instead of rounding to 0 or 1."""
    return _stacked_bars(chart_id, bars, 1e-9, lambda v: f"{number(v)} {unit}", number)


# The page's only script: crosshair + values under the pointer, legend toggles. Formats mirror
# simulator/humanize.py (clock, duration, count, fraction).
SCRIPT = r"""
(function () {
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  var fmt = {
    clock: function (s) { s = Math.max(0, Math.floor(s));
      return pad(Math.floor(s / 3600)) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60); },
    duration: function (s) {
      if (s < 1) return (s * 1000).toPrecision(3).replace(/\.?0+$/, "") + " ms";
      if (s < 60) return s.toPrecision(3).replace(/\.?0+$/, "") + " s";
      s = Math.round(s); var m = Math.floor(s / 60);
      return m >= 60 ? Math.floor(m / 60) + " h " + (m % 60) + " min"
                     : m + " min " + (s % 60) + " s"; },
    count: function (v) { return Math.round(v).toLocaleString("en-US"); },
    fraction: function (v) { return Math.round(v * 100) + " %"; }
  };
  function invert(sc, px) {
    var v = sc.lo + (px - sc.px0) / (sc.px1 - sc.px0) * (sc.hi - sc.lo);
    return sc.log ? Math.pow(10, v) : v;
  }
  function valueAt(s, x) {            // the last point at or before x
    var lo = 0, hi = s.x.length - 1, best = -1;
    while (lo <= hi) { var mid = (lo + hi) >> 1;
      if (s.x[mid] <= x) { best = mid; lo = mid + 1; } else { hi = mid - 1; } }
    return best < 0 ? null : s.y[best];
  }
  var tip = document.createElement("div");
  tip.className = "tip"; tip.hidden = true; document.body.appendChild(tip);
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var d = JSON.parse(svg.getAttribute("data-chart"));
    var cursor = svg.querySelector("line.cursor");
    svg.addEventListener("mousemove", function (ev) {
      var pt = svg.createSVGPoint(); pt.x = ev.clientX; pt.y = ev.clientY;
      var p = pt.matrixTransform(svg.getScreenCTM().inverse());
      if (p.x < d.sx.px0 || p.x > d.sx.px1) {
        tip.hidden = true; cursor.setAttribute("visibility", "hidden"); return; }
      var x = invert(d.sx, p.x), rows = [fmt[d.xf](x)];
      d.series.forEach(function (s, i) {
        var g = svg.querySelector('g.series[data-i="' + i + '"]');
        var v = valueAt(s, x);
        if (v !== null && !g.classList.contains("off")) rows.push(s.label + ": " + fmt[d.yf](v));
      });
      cursor.setAttribute("x1", p.x); cursor.setAttribute("x2", p.x);
      cursor.setAttribute("visibility", "visible");
      tip.textContent = rows.join("\n"); tip.hidden = false;
      tip.style.left = (ev.pageX + 14) + "px"; tip.style.top = (ev.pageY + 10) + "px";
    });
    svg.addEventListener("mouseleave", function () {
      tip.hidden = true; cursor.setAttribute("visibility", "hidden"); });
    svg.parentNode.querySelectorAll(".legend button").forEach(function (b) {
      b.addEventListener("click", function () {
        var g = svg.querySelector('g.series[data-i="' + b.getAttribute("data-i") + '"]');
        b.classList.toggle("off", g.classList.toggle("off"));
      });
    });
  });
  document.documentElement.setAttribute("data-charts", "ready");
})();
"""

STYLE = (
    "figure.plot{margin:0 0 1.2em}svg.chart,svg.bars{width:100%;height:auto;font:11px sans-serif}"
    "svg .grid{stroke:#eee}svg .tick{fill:#555}svg .axis{fill:#333}"
    "svg .series path{fill:none;stroke-width:1.6}svg .series.off{display:none}"
    "svg .cursor{stroke:#999}svg .marker text,svg .level text{font-weight:bold}"
    "svg rect:hover{opacity:.75}"
    ".legend button{font:12px sans-serif;background:none;border:1px solid #ddd;border-radius:3px;"
    "margin:2px;padding:1px 6px;cursor:pointer}.legend button.off{opacity:.35}"
    ".legend svg{vertical-align:middle;margin-right:4px}"
    ".tip{position:absolute;white-space:pre;background:#fffffa;border:1px solid #aaa;"
    "padding:4px 6px;font:12px sans-serif;pointer-events:none;box-shadow:1px 1px 3px #ccc}"
)

__all__ = ["SCRIPT", "STYLE", "Bar", "Dot", "Level", "LineChart", "Marker", "Series", "bar_chart",
           "line_chart", "pareto_front", "scatter_chart", "thin", "value_bar_chart"]
