#!/usr/bin/env python3
"""Summarise a side-by-side benchmark sweep log as Markdown tables and an SVG chart.

The input is the log written by the sweep runner (e.g. /tmp/peers/sweep.log). Two kinds
of line are used, everything else is ignored:

* one result line per run, ``SERVER PROFILE ARGS... key=value ...``, e.g.
  ``ringcast broadcast --connections 10000 --rate 5 --duration-s 10 ... deliv/s=48893
  p50=42.4ms p99=108.4ms ... cpu=3.77 ...``; a value of ``None`` means the run failed to
  report it and is treated as missing;
* ``raw_send run N: one pass over all ... sockets ...: median X ms, ...`` lines.

Printed to stdout: one Markdown table per profile (broadcast, channels) with the median
(and for p50/p99 the min-max range) over runs at each (rate, server), a raw_send summary
line, and for each server the highest broadcast rate that was loss-free with p99 < 1 s.

With ``--svg OUT.svg`` it also writes a standalone SVG with two log-log panels for the
broadcast profile: deliveries/s vs publish rate (with the offered load as a dashed line)
and p99 latency vs publish rate, one line per server, using the medians.

Standard library only.
"""

import argparse
import math
import re
import statistics
import sys
from collections import defaultdict
from xml.sax.saxutils import escape

SERVERS = ("ringcast", "soketi", "sockudo")
TABLE_PROFILES = ("broadcast", "channels")
LATENCY_KEYS = ("p50", "p99", "p999", "max")
SATURATION_MS = 1000.0
DEFAULT_SUBSCRIBERS = 10_000

RESULT_RE = re.compile(r"^(ringcast|soketi|sockudo)\s+(broadcast|channels|churn|presence)\s+(.*)$")
RAW_SEND_RE = re.compile(r"^raw_send run \d+:.*?\bmedian ([0-9.]+) ms")


# --------------------------------------------------------------------------- parsing

def parse_number(text):
    """'42.4ms' -> 42.4, '48893' -> 48893.0, 'None' or garbage -> None."""
    if text.endswith("ms"):
        text = text[:-2]
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_result_line(line):
    """Return a run dict for a result line, or None if the line is not one."""
    match = RESULT_RE.match(line)
    if not match:
        return None
    server, profile, rest = match.groups()
    args, metrics = [], {}
    for token in rest.split():
        if "=" in token:
            key, _, value = token.partition("=")
            metrics[key] = parse_number(value)
        else:
            args.append(token)
    for key in LATENCY_KEYS:
        # The runner prints 0.0 ms when the load tester reported no latency at all.
        if metrics.get(key) == 0:
            metrics[key] = None
    if all(metrics.get(key) is None for key in LATENCY_KEYS):
        # Nothing was measured, so a printed deliv/s=0 is the runner's default, not data.
        metrics["deliv/s"] = None
    return {
        "server": server,
        "profile": profile,
        "rate": arg_value(args, "--rate"),
        "connections": arg_value(args, "--connections"),
        "metrics": metrics,
    }


def arg_value(args, flag):
    """Numeric value following `flag` in an argument list, or None."""
    if flag in args:
        index = args.index(flag)
        if index + 1 < len(args):
            return parse_number(args[index + 1])
    return None


def parse_log(path):
    """Return (list of run dicts, list of raw_send medians in ms) from the log file."""
    runs, raw_send = [], []
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            line = line.rstrip("\n")
            raw = RAW_SEND_RE.match(line)
            if raw:
                raw_send.append(float(raw.group(1)))
                continue
            run = parse_result_line(line)
            if run is not None:
                runs.append(run)
    return runs, raw_send


# --------------------------------------------------------------------------- statistics

def present(runs, key):
    """The non-missing values of one metric over a list of runs."""
    return [run["metrics"][key] for run in runs if run["metrics"].get(key) is not None]


def median_of(values):
    return statistics.median(values) if values else None


def spread(values):
    """(median, min, max) of a list, or (None, None, None) when empty."""
    if not values:
        return None, None, None
    return statistics.median(values), min(values), max(values)


def is_failed(run):
    """A run that reported None for some value, or no latency at all."""
    metrics = run["metrics"]
    no_latency = all(metrics.get(key) is None for key in LATENCY_KEYS)
    return no_latency or any(value is None for value in metrics.values())


def summarise(runs):
    """Summary of the runs of one (profile, rate, server) group."""
    lost = present(runs, "lost")
    return {
        "runs": len(runs),
        "failed": sum(1 for run in runs if is_failed(run)),
        "delivered": median_of(present(runs, "deliv/s")),
        "lost_max": max(lost) if lost else None,
        "p50": spread(present(runs, "p50")),
        "p99": spread(present(runs, "p99")),
        "p999": median_of(present(runs, "p999")),
        "max": median_of(present(runs, "max")),
        "cpu": median_of(present(runs, "cpu")),
    }


def group_runs(runs, profile):
    """{(rate, server): summary} for one profile, skipping runs without a rate."""
    groups = defaultdict(list)
    for run in runs:
        if run["profile"] == profile and run["rate"] is not None:
            groups[(run["rate"], run["server"])].append(run)
    return {key: summarise(group) for key, group in groups.items()}


def ordered_keys(summary):
    """Keys sorted by rate, then by the fixed server order."""
    return sorted(summary, key=lambda key: (key[0], SERVERS.index(key[1])))


def is_saturated(row):
    p50 = row["p50"][0]
    return p50 is not None and p50 >= SATURATION_MS


def best_loss_free_rate(summary, server):
    """Highest rate (and its row) with zero loss in every run and median p99 < 1 s."""
    best = None
    for rate, srv in ordered_keys(summary):
        row = summary[(rate, srv)]
        if srv != server or row["lost_max"] != 0:
            continue
        p99 = row["p99"][0]
        if p99 is not None and p99 < SATURATION_MS:
            best = (rate, row)
    return best


# --------------------------------------------------------------------------- formatting

DASH = "–"


def fmt_rate(rate):
    return f"{rate:g}"


def fmt_count(value):
    """Three significant digits with a k / M suffix: 98.4 k, 197 k, 1.18 M."""
    if value is None:
        return DASH
    for divisor, suffix in ((1e6, " M"), (1e3, " k"), (1, "")):
        if abs(value) >= divisor or divisor == 1:
            scaled = value / divisor
            decimals = max(0, 2 - int(math.floor(math.log10(abs(scaled))))) if scaled else 0
            if suffix == "":
                decimals = 0
            return f"{scaled:.{decimals}f}{suffix}"
    return DASH


def fmt_ms(value):
    """'42.4 ms', or '3.68 s' from 1000 ms up."""
    if value is None:
        return DASH
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms"


def fmt_spread(triple, runs):
    """'42.4 ms (40.9–42.6 ms)'; the range is left out for a single value."""
    median, low, high = triple
    if median is None:
        return DASH
    if runs < 2 or low == high:
        return fmt_ms(median)
    low_text, high_text = fmt_ms(low), fmt_ms(high)
    low_num, low_unit = low_text.split(" ")
    high_num, high_unit = high_text.split(" ")
    if low_unit == high_unit:
        return f"{fmt_ms(median)} ({low_num}{DASH}{high_num} {high_unit})"
    return f"{fmt_ms(median)} ({low_text}{DASH}{high_text})"


def fmt_plain(value, spec):
    return DASH if value is None else format(value, spec)


COLUMNS = ("rate", "server", "runs", "delivered/s (median)", "lost (max over runs)",
           "p50 median (min–max)", "p99 median (min–max)", "p99.9 median", "max median",
           "server CPU s median")
ALIGN = ("---:", ":---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:")


def table_row(rate, server, row):
    delivered = fmt_count(row["delivered"])
    if is_saturated(row):
        delivered += " — saturated"
    runs = str(row["runs"]) + (f" ({row['failed']} failed)" if row["failed"] else "")
    cells = (fmt_rate(rate), server, runs, delivered,
             fmt_plain(row["lost_max"], ".0f"),
             fmt_spread(row["p50"], row["runs"]), fmt_spread(row["p99"], row["runs"]),
             fmt_ms(row["p999"]), fmt_ms(row["max"]), fmt_plain(row["cpu"], ".2f"))
    return "| " + " | ".join(cells) + " |"


def markdown_table(profile, summary):
    lines = [f"### {profile}", ""]
    if not summary:
        return lines + ["_no runs in the log yet_", ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join(ALIGN) + "|")
    lines.extend(table_row(rate, server, summary[(rate, server)])
                 for rate, server in ordered_keys(summary))
    return lines + [""]


def raw_send_line(medians):
    if not medians:
        return "raw_send: no runs in the log"
    runs = " / ".join(f"{m:.2f}" for m in medians)
    return (f"raw_send: median of {len(medians)} runs = {statistics.median(medians):.2f} ms "
            f"(runs: {runs})")


def best_rate_line(summary, server):
    prefix = f"{server}: highest loss-free rate with p99 < 1 s:"
    best = best_loss_free_rate(summary, server)
    if best is None:
        return f"{prefix} none"
    rate, row = best
    return (f"{prefix} {fmt_rate(rate)}/s → {fmt_count(row['delivered'])} deliveries/s "
            f"(median), p99 {fmt_ms(row['p99'][0])}")


def text_report(runs, raw_send):
    lines = []
    for profile in TABLE_PROFILES:
        lines.extend(markdown_table(profile, group_runs(runs, profile)))
    lines.append(raw_send_line(raw_send))
    lines.append("")
    broadcast = group_runs(runs, "broadcast")
    lines.extend(best_rate_line(broadcast, server) for server in SERVERS)
    return "\n".join(lines)


# --------------------------------------------------------------------------- SVG

WIDTH, HEIGHT = 900, 420
TITLE = "Broadcast, 1 channel × 10,000 subscribers, one server core (medians)"
COLOURS = {"ringcast": "#1f77b4", "soketi": "#ff7f0e", "sockudo": "#2ca02c"}
FONT = 'font-family="Helvetica, Arial, sans-serif"'
X_TICKS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
PLOT_TOP, PLOT_BOTTOM = 84, 350
LEFT_PANEL, RIGHT_PANEL = (80, 420), (540, 880)


class LogAxis:
    """Maps values on a log10 scale from [lo, hi] onto pixel range [start, end]."""

    def __init__(self, lo, hi, start, end):
        self.lo, self.hi = math.log10(lo), math.log10(hi)
        self.start, self.end = start, end

    def __call__(self, value):
        frac = (math.log10(value) - self.lo) / (self.hi - self.lo)
        return self.start + frac * (self.end - self.start)

    def contains(self, value):
        return value > 0 and self.lo - 1e-9 <= math.log10(value) <= self.hi + 1e-9


def decade_bounds(values):
    """Smallest [10^a, 10^b] range (a < b) containing all positive values."""
    logs = [math.log10(v) for v in values if v and v > 0]
    lo, hi = math.floor(min(logs)), math.ceil(max(logs))
    return 10.0 ** lo, 10.0 ** max(hi, lo + 1)


def x_bounds(rates):
    """Rate axis: at least 1..500, padded a little in log space."""
    lo, hi = min([1.0] + rates), max([500.0] + rates)
    pad = (math.log10(hi) - math.log10(lo)) * 0.04
    return lo / 10 ** pad, hi * 10 ** pad


def fmt_count_tick(value):
    for divisor, suffix in ((1e6, " M"), (1e3, " k")):
        if value >= divisor:
            return f"{value / divisor:g}{suffix}"
    return f"{value:g}"


def fmt_ms_tick(value):
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:g} ms"


def svg_text(x, y, text, size=13, anchor="middle", extra=""):
    return (f'<text x="{x:.1f}" y="{y:.1f}" {FONT} font-size="{size}" '
            f'text-anchor="{anchor}"{extra}>{escape(text)}</text>')


def marker(server, x, y):
    colour = COLOURS[server]
    if server == "soketi":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>'
    if server == "sockudo":
        points = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"
        return f'<polygon points="{points}" fill="{colour}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'


def axes_markup(xaxis, yaxis, y_ticks, y_label_fn):
    """Frame, grid lines and tick labels of one panel."""
    left, right = xaxis.start, xaxis.end
    parts = []
    for tick in X_TICKS:
        if xaxis.contains(tick):
            x = xaxis(tick)
            parts.append(f'<line x1="{x:.1f}" y1="{PLOT_TOP}" x2="{x:.1f}" y2="{PLOT_BOTTOM}" '
                         f'stroke="#e6e6e6"/>')
            parts.append(svg_text(x, PLOT_BOTTOM + 17, f"{tick:g}"))
    for tick in y_ticks:
        y = yaxis(tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e6e6e6"/>')
        parts.append(svg_text(left - 6, y + 4, y_label_fn(tick), anchor="end"))
    parts.append(f'<rect x="{left}" y="{PLOT_TOP}" width="{right - left}" '
                 f'height="{PLOT_BOTTOM - PLOT_TOP}" fill="none" stroke="#333"/>')
    return parts


def decade_ticks(lo, hi):
    return [10.0 ** e for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]


def series_markup(series, xaxis, yaxis):
    """One polyline plus markers per server; points outside the axes are skipped."""
    parts = []
    for server in SERVERS:
        points = [(xaxis(r), yaxis(v)) for r, v in series.get(server, [])
                  if v is not None and xaxis.contains(r) and yaxis.contains(v)]
        if not points:
            continue
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{COLOURS[server]}" '
                     f'stroke-width="2"/>')
        parts.extend(marker(server, x, y) for x, y in points)
    return parts


def panel_markup(bounds, title, y_title, series, y_values, y_label_fn, reference=None):
    """A full panel: title, axes, optional dashed reference line, data series."""
    left, right = bounds
    rates = [r for points in series.values() for r, _ in points]
    xaxis = LogAxis(*x_bounds(rates), left, right)
    ylo, yhi = decade_bounds(y_values)
    yaxis = LogAxis(ylo, yhi, PLOT_BOTTOM, PLOT_TOP)
    centre = (left + right) / 2
    parts = [svg_text(centre, PLOT_TOP - 10, title, size=13, extra=' font-weight="bold"')]
    parts += axes_markup(xaxis, yaxis, decade_ticks(ylo, yhi), y_label_fn)
    if reference:
        parts.append(reference_markup(reference, xaxis, yaxis))
    parts += series_markup(series, xaxis, yaxis)
    parts.append(svg_text(centre, PLOT_BOTTOM + 38, "publishes/s (log scale)"))
    ymid = (PLOT_TOP + PLOT_BOTTOM) / 2
    parts.append(svg_text(left - 60, ymid, y_title,
                          extra=f' transform="rotate(-90 {left - 60} {ymid:.1f})"'))
    return parts


def reference_markup(per_rate, xaxis, yaxis):
    """Dashed grey line y = per_rate × x across the panel, clipped to the y range."""
    lo = max(10 ** xaxis.lo, 10 ** yaxis.lo / per_rate)
    hi = min(10 ** xaxis.hi, 10 ** yaxis.hi / per_rate)
    return (f'<line x1="{xaxis(lo):.1f}" y1="{yaxis(lo * per_rate):.1f}" '
            f'x2="{xaxis(hi):.1f}" y2="{yaxis(hi * per_rate):.1f}" stroke="#999" '
            f'stroke-width="1.5" stroke-dasharray="6 4"/>')


def legend_markup(subscribers):
    """One row of legend entries centred under the title."""
    entries = [(server, server) for server in SERVERS]
    entries.append((None, f"offered load ({subscribers:,.0f} × rate)"))
    widths = [40 + 7.5 * len(label) for _, label in entries]
    x = (WIDTH - sum(widths)) / 2
    y = 50
    parts = []
    for (server, label), width in zip(entries, widths):
        if server is None:
            parts.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 24:.1f}" y2="{y:.1f}" '
                         f'stroke="#999" stroke-width="1.5" stroke-dasharray="6 4"/>')
        else:
            parts.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 24:.1f}" y2="{y:.1f}" '
                         f'stroke="{COLOURS[server]}" stroke-width="2"/>')
            parts.append(marker(server, x + 12, y))
        parts.append(svg_text(x + 30, y + 4, label, anchor="start"))
        x += width
    return parts


def broadcast_series(summary, pick):
    """{server: [(rate, value)]} sorted by rate, value = pick(row)."""
    series = defaultdict(list)
    for rate, server in ordered_keys(summary):
        series[server].append((rate, pick(summary[(rate, server)])))
    return series


def typical_subscribers(runs):
    counts = [r["connections"] for r in runs if r["profile"] == "broadcast" and r["connections"]]
    return statistics.median(counts) if counts else DEFAULT_SUBSCRIBERS


def render_svg(runs):
    summary = group_runs(runs, "broadcast")
    subscribers = typical_subscribers(runs)
    delivered = broadcast_series(summary, lambda row: row["delivered"])
    p99 = broadcast_series(summary, lambda row: row["p99"][0])
    _, xhi = x_bounds([rate for rate, _ in summary])
    # The offered-load line only extends the range upwards; it is clipped at the bottom.
    delivered_values = [v for pts in delivered.values() for _, v in pts if v]
    delivered_values += [xhi * subscribers]
    p99_values = [v for pts in p99.values() for _, v in pts if v] or [10.0, 1000.0]

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        svg_text(WIDTH / 2, 26, TITLE, size=15, extra=' font-weight="bold"'),
    ]
    parts += legend_markup(subscribers)
    parts += panel_markup(LEFT_PANEL, "delivered per second vs publish rate",
                          "deliveries/s (log scale)", delivered, delivered_values,
                          fmt_count_tick, reference=subscribers)
    parts += panel_markup(RIGHT_PANEL, "p99 latency vs publish rate",
                          "p99 latency (log scale)", p99, p99_values, fmt_ms_tick)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Summarise a benchmark sweep log as Markdown tables (stdout) and, "
                    "optionally, an SVG chart of the broadcast profile.")
    parser.add_argument("log", help="sweep log file, e.g. /tmp/peers/sweep.log")
    parser.add_argument("--svg", metavar="OUTPUT.svg",
                        help="also write a two-panel SVG chart of the broadcast runs here")
    args = parser.parse_args(argv)

    runs, raw_send = parse_log(args.log)
    print(text_report(runs, raw_send))
    if args.svg:
        with open(args.svg, "w", encoding="utf-8") as out:
            out.write(render_svg(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
