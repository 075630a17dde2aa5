//! Hand-written SVG plots of a run, next to its text and JSON results: `latency.svg`, the latency
//! distribution as HdrHistogram's percentile plot (x = percentile on a log scale of
//! 1/(1−p), y = latency in ms), and `timeline.svg`, delivered/s over time above p50/p99 per
//! second. [`latency_svg`] and [`timeline_svg`] take plain data and return SVG text;
//! [`write_svgs`] is the only part that knows about [`RunResult`] and files.

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;

use crate::report::RunResult;

/// Width of both plots, px.
const WIDTH: f64 = 820.0;
/// Left edge of the plot areas (room for y tick labels and the y axis title).
const LEFT: f64 = 80.0;
/// Right edge of the plot areas.
const RIGHT: f64 = WIDTH - 40.0;
/// Top of the first plot area (room for up to three title lines).
const TOP: f64 = 84.0;

/// Height of `latency.svg`.
const LAT_HEIGHT: f64 = 540.0;
/// Bottom of the latency plot area.
const LAT_BOTTOM: f64 = 470.0;
/// Fewest decades of 1/(1−p) on the latency x axis (up to 99.999%).
const MIN_DECADES: u32 = 5;
/// Most decades of 1/(1−p) on the latency x axis (up to 99.99999%).
const MAX_DECADES: u32 = 7;

/// Height of `timeline.svg`.
const TL_HEIGHT: f64 = 620.0;
/// Bottom of the delivered/s panel.
const TL_RATE_BOTTOM: f64 = 300.0;
/// Top of the latency panel.
const TL_LAT_TOP: f64 = 340.0;
/// Bottom of the latency panel.
const TL_LAT_BOTTOM: f64 = 550.0;
/// Draw a marker at each sample when there are at most this many.
const MARKERS_MAX: usize = 120;

const RATE_COLOR: &str = "#1f77b4";
const P99_COLOR: &str = "#d62728";
const P50_COLOR: &str = "#7f7f7f";
const MAX_COLOR: &str = "#ff7f0e";
const GRID_COLOR: &str = "#e0e0e0";

/// One second of a run, as the timeline plot needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecondSample {
    /// Seconds since the run started (the end of this one-second interval).
    pub t_s: f64,
    /// Measured deliveries in this second.
    pub delivered_per_s: f64,
    /// p50 of this second's deliveries, ms (`None`: no deliveries).
    pub p50_ms: Option<f64>,
    /// p99 of this second's deliveries, ms (`None`: no deliveries).
    pub p99_ms: Option<f64>,
}

/// Writes `latency.svg` and `timeline.svg` for `r` (whose merged histogram is `h`) into `dir`.
pub fn write_svgs(dir: &Path, r: &RunResult, h: &Histogram<u64>) -> Result<(), String> {
    let p = &r.plan;
    let scenario = format!("{:?}", p.scenario).to_lowercase();
    let head = if r.publish.is_some() {
        format!(
            "{scenario}, {} connections, {} events/s, {} B, {} s measured",
            r.subscribed, p.rate, p.payload_bytes, p.duration_s
        )
    } else {
        format!(
            "{scenario}, {} connections held {} s",
            r.subscribed, p.duration_s
        )
    };
    let l = &r.latency;
    let latency_title = if l.count == 0 {
        format!("Latency distribution: {head}\nno measured deliveries")
    } else {
        format!(
            "Latency distribution: {head}\nn = {}, p50 {}, p90 {}, p99 {}, p99.9 {}, p99.99 {}, \
         max {} ms",
            l.count,
            fmt_ms(us_to_ms(l.p50_us)),
            fmt_ms(us_to_ms(l.p90_us)),
            fmt_ms(us_to_ms(l.p99_us)),
            fmt_ms(us_to_ms(l.p999_us)),
            fmt_ms(us_to_ms(l.p9999_us)),
            fmt_ms(us_to_ms(l.max_us)),
        )
    };
    let timeline_title = format!(
        "Over time: {head}\ndelivered {} of {} expected ({:.0}/s over the measured window), \
         lost {}, duplicates {}",
        r.counters.delivered, r.expected, r.delivered_per_s, r.lost, r.counters.duplicates
    );
    let seconds: Vec<SecondSample> = r
        .intervals
        .iter()
        .map(|iv| {
            let some = |us: u64| (iv.delivered > 0).then(|| us_to_ms(us));
            SecondSample {
                t_s: iv.t_s as f64,
                delivered_per_s: iv.delivered as f64,
                p50_ms: some(iv.p50_us),
                p99_ms: some(iv.p99_us),
            }
        })
        .collect();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(
        "latency.svg",
        &latency_svg(&latency_points(h), &latency_title),
    )?;
    write("timeline.svg", &timeline_svg(&seconds, &timeline_title))
}

/// `(quantile in 0..=1, latency ms)` points of `h`, the rows of its `.hgrm` distribution
/// (the last, at quantile 1, is the maximum).
pub fn latency_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| (v.quantile_iterated_to(), us_to_ms(v.value_iterated_to())))
        .collect()
}

/// The percentile plot of `points` (`(quantile in 0..=1, latency ms)`, ascending, as from
/// [`latency_points`]): x = 1/(1−quantile) on a log scale labelled 50% … 99.999%, y = ms
/// (linear, from 0). A point at quantile 1 is the maximum: drawn as a dashed line, since it
/// has no place on the x axis. `title` may have several lines (`\n`). Without points: a
/// "no data" plot.
pub fn latency_svg(points: &[(f64, f64)], title: &str) -> String {
    let valid: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(q, v)| q.is_finite() && v.is_finite() && (0.0..=1.0).contains(&q))
        .collect();
    let mut s = open_svg(LAT_HEIGHT, title);
    let frame = Frame {
        x0: LEFT,
        x1: RIGHT,
        y0: TOP,
        y1: LAT_BOTTOM,
    };
    let Some(max_ms) = valid.iter().map(|p| p.1).reduce(f64::max) else {
        no_data(&mut s, &frame);
        return close_svg(s);
    };
    let curve: Vec<(f64, f64)> = valid.iter().copied().filter(|p| p.0 < 1.0).collect();
    let last_q = curve.iter().map(|p| p.0).fold(0.0, f64::max);
    let decades = decades_for(last_q);
    let (y_top, y_step) = nice_axis(max_ms, 5.0);
    let x_of = |q: f64| frame.x0 + frame.width() * (log_odds(q) / f64::from(decades)).min(1.0);
    let y_of = |v: f64| frame.y1 - frame.height() * (v / y_top);

    // Grid, ticks and labels.
    let mut v = 0.0;
    while v <= y_top + y_step * 1e-6 {
        let y = y_of(v);
        h_grid(&mut s, &frame, y);
        tick_label(&mut s, frame.x0 - 8.0, y + 4.0, "end", &fmt_tick(v, y_step));
        v += y_step;
    }
    let mut x_ticks = vec![(0.0, "0%".to_string()), (0.5, "50%".to_string())];
    for d in 1..=decades {
        x_ticks.push((1.0 - 10f64.powi(-(d as i32)), decade_label(d)));
    }
    for (q, label) in &x_ticks {
        let x = x_of(*q);
        v_grid(&mut s, &frame, x);
        tick_label(&mut s, x, frame.y1 + 18.0, "middle", label);
    }
    axis_title_x(
        &mut s,
        &frame,
        frame.y1 + 42.0,
        "percentile (log scale of 1/(1−p))",
    );
    axis_title_y(&mut s, &frame, "latency (ms)");
    frame_rect(&mut s, &frame);

    // The maximum, then the curve on top.
    let y_max = y_of(max_ms);
    let _ = writeln!(
        s,
        r#"<line x1="{:.1}" y1="{y_max:.1}" x2="{:.1}" y2="{y_max:.1}" stroke="{MAX_COLOR}" stroke-width="1.5" stroke-dasharray="6 4"/>"#,
        frame.x0, frame.x1
    );
    let label_y = if y_max - 6.0 > frame.y0 + 12.0 {
        y_max - 6.0
    } else {
        y_max + 16.0
    };
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{label_y:.1}" text-anchor="end" font-size="12" fill="{MAX_COLOR}">max {} ms</text>"#,
        frame.x1 - 6.0,
        esc(&fmt_ms(max_ms))
    );
    let xy: Vec<(f64, f64)> = curve.iter().map(|&(q, v)| (x_of(q), y_of(v))).collect();
    polyline(&mut s, &xy, RATE_COLOR, 2.0);
    if xy.len() == 1 {
        markers(&mut s, &xy, RATE_COLOR);
    }
    close_svg(s)
}

/// Two stacked panels over time (x = `t_s`): delivered/s on top, p99 and p50 per second
/// (ms) below; seconds without deliveries leave a gap in the latency lines. `title` may
/// have several lines (`\n`). Without samples: a "no data" plot.
pub fn timeline_svg(seconds: &[SecondSample], title: &str) -> String {
    let mut s = open_svg(TL_HEIGHT, title);
    let rate_frame = Frame {
        x0: LEFT,
        x1: RIGHT,
        y0: TOP,
        y1: TL_RATE_BOTTOM,
    };
    let lat_frame = Frame {
        x0: LEFT,
        x1: RIGHT,
        y0: TL_LAT_TOP,
        y1: TL_LAT_BOTTOM,
    };
    let samples: Vec<SecondSample> = seconds
        .iter()
        .copied()
        .filter(|x| x.t_s.is_finite() && x.delivered_per_s.is_finite())
        .collect();
    if samples.is_empty() {
        no_data(&mut s, &rate_frame);
        no_data(&mut s, &lat_frame);
        return close_svg(s);
    }
    let finite = |x: Option<f64>| x.filter(|v| v.is_finite());
    let t_max = samples.iter().map(|x| x.t_s).fold(0.0, f64::max).max(1.0);
    let rate_max = samples
        .iter()
        .map(|x| x.delivered_per_s)
        .fold(0.0, f64::max);
    let lat_max = samples
        .iter()
        .flat_map(|x| [finite(x.p50_ms), finite(x.p99_ms)])
        .flatten()
        .fold(0.0, f64::max);
    let any_latency = samples
        .iter()
        .any(|x| finite(x.p50_ms).is_some() || finite(x.p99_ms).is_some());
    let (t_top, t_step) = nice_axis(t_max, 8.0);
    let (rate_top, rate_step) = nice_axis(rate_max, 5.0);
    let (lat_top, lat_step) = nice_axis(lat_max, 4.0);
    let x_of = |t: f64| LEFT + (RIGHT - LEFT) * (t / t_top);
    let y_in = |f: &Frame, top: f64, v: f64| f.y1 - f.height() * (v / top);

    for (f, top, step, si) in [
        (&rate_frame, rate_top, rate_step, true),
        (&lat_frame, lat_top, lat_step, false),
    ] {
        let mut v = 0.0;
        while v <= top + step * 1e-6 {
            let y = y_in(f, top, v);
            h_grid(&mut s, f, y);
            let label = if si {
                fmt_si(v, step)
            } else {
                fmt_tick(v, step)
            };
            tick_label(&mut s, f.x0 - 8.0, y + 4.0, "end", &label);
            v += step;
        }
        let mut t = 0.0;
        while t <= t_top + t_step * 1e-6 {
            v_grid(&mut s, f, x_of(t));
            t += t_step;
        }
    }
    let mut t = 0.0;
    while t <= t_top + t_step * 1e-6 {
        tick_label(
            &mut s,
            x_of(t),
            lat_frame.y1 + 18.0,
            "middle",
            &fmt_tick(t, t_step),
        );
        t += t_step;
    }
    axis_title_x(
        &mut s,
        &lat_frame,
        lat_frame.y1 + 42.0,
        "seconds since the workers started",
    );
    axis_title_y(&mut s, &rate_frame, "delivered / s");
    axis_title_y(&mut s, &lat_frame, "latency per second (ms)");
    frame_rect(&mut s, &rate_frame);
    frame_rect(&mut s, &lat_frame);

    // Delivered/s: a filled area under the line.
    let rate_xy: Vec<(f64, f64)> = samples
        .iter()
        .map(|x| (x_of(x.t_s), y_in(&rate_frame, rate_top, x.delivered_per_s)))
        .collect();
    if let (Some(first), Some(last)) = (rate_xy.first(), rate_xy.last()) {
        let mut pts = format!("{:.1},{:.1}", first.0, rate_frame.y1);
        for (x, y) in &rate_xy {
            let _ = write!(pts, " {x:.1},{y:.1}");
        }
        let _ = write!(pts, " {:.1},{:.1}", last.0, rate_frame.y1);
        let _ = writeln!(
            s,
            r#"<polygon points="{pts}" fill="{RATE_COLOR}" fill-opacity="0.15" stroke="none"/>"#
        );
    }
    polyline(&mut s, &rate_xy, RATE_COLOR, 2.0);
    if rate_xy.len() <= MARKERS_MAX {
        markers(&mut s, &rate_xy, RATE_COLOR);
    }

    // p50 and p99, split into runs of seconds that had deliveries.
    for (pick, color, width) in [(0usize, P50_COLOR, 1.5), (1usize, P99_COLOR, 2.0)] {
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut all: Vec<(f64, f64)> = Vec::new();
        for x in &samples {
            let v = finite(if pick == 0 { x.p50_ms } else { x.p99_ms });
            match v {
                Some(v) => run.push((x_of(x.t_s), y_in(&lat_frame, lat_top, v))),
                None => {
                    polyline(&mut s, &run, color, width);
                    all.append(&mut run);
                }
            }
        }
        polyline(&mut s, &run, color, width);
        all.append(&mut run);
        if all.len() <= MARKERS_MAX {
            markers(&mut s, &all, color);
        }
    }

    // Legend, top right of each panel.
    legend(
        &mut s,
        &rate_frame,
        &[(RATE_COLOR, "delivered/s (measured events)")],
    );
    legend(
        &mut s,
        &lat_frame,
        &[(P99_COLOR, "p99"), (P50_COLOR, "p50")],
    );
    if !any_latency {
        no_data(&mut s, &lat_frame);
    }
    close_svg(s)
}

/// A plot area in px (y grows downwards: `y0` is the top).
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn width(&self) -> f64 {
        self.x1 - self.x0
    }
    fn height(&self) -> f64 {
        self.y1 - self.y0
    }
}

/// Text safe inside an XML element or a double-quoted attribute.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The SVG opening, a white background and the title lines (first bold).
fn open_svg(height: f64, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"#
    );
    let first = title.lines().next().unwrap_or("");
    let _ = writeln!(s, "<title>{}</title>", esc(first));
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    for (i, line) in title.lines().take(3).enumerate() {
        let (size, weight) = if i == 0 {
            (15.0, "bold")
        } else {
            (12.0, "normal")
        };
        // Shrink a line that would not fit (about 0.6 em a character in sans-serif).
        let fit = (WIDTH - LEFT - 10.0) / (0.6 * line.chars().count().max(1) as f64);
        let size = f64::min(size, fit.floor().max(7.0));
        let _ = writeln!(
            s,
            r##"<text x="{LEFT}" y="{}" font-size="{size}" font-weight="{weight}" fill="#222">{}</text>"##,
            24 + 20 * i,
            esc(line)
        );
    }
    s
}

fn close_svg(mut s: String) -> String {
    s.push_str("</svg>\n");
    s
}

fn no_data(s: &mut String, f: &Frame) {
    frame_rect(s, f);
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="16" fill="#888">no data</text>"##,
        (f.x0 + f.x1) / 2.0,
        (f.y0 + f.y1) / 2.0
    );
}

fn frame_rect(s: &mut String, f: &Frame) {
    let _ = writeln!(
        s,
        r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        f.x0,
        f.y0,
        f.width(),
        f.height()
    );
}

fn h_grid(s: &mut String, f: &Frame, y: f64) {
    let _ = writeln!(
        s,
        r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID_COLOR}"/>"#,
        f.x0, f.x1
    );
}

fn v_grid(s: &mut String, f: &Frame, x: f64) {
    let _ = writeln!(
        s,
        r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{GRID_COLOR}"/>"#,
        f.y0, f.y1
    );
}

fn tick_label(s: &mut String, x: f64, y: f64, anchor: &str, text: &str) {
    let _ = writeln!(
        s,
        r##"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="12" fill="#333">{}</text>"##,
        esc(text)
    );
}

fn axis_title_x(s: &mut String, f: &Frame, y: f64, text: &str) {
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{y:.1}" text-anchor="middle" font-size="13" fill="#222">{}</text>"##,
        (f.x0 + f.x1) / 2.0,
        esc(text)
    );
}

fn axis_title_y(s: &mut String, f: &Frame, text: &str) {
    let (x, y) = (f.x0 - 58.0, (f.y0 + f.y1) / 2.0);
    let _ = writeln!(
        s,
        r##"<text x="{x:.1}" y="{y:.1}" transform="rotate(-90 {x:.1} {y:.1})" text-anchor="middle" font-size="13" fill="#222">{}</text>"##,
        esc(text)
    );
}

fn polyline(s: &mut String, xy: &[(f64, f64)], color: &str, width: f64) {
    if xy.len() < 2 {
        return;
    }
    let mut pts = String::new();
    for (i, (x, y)) in xy.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(pts, "{sep}{x:.1},{y:.1}");
    }
    let _ = writeln!(
        s,
        r#"<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{width}" stroke-linejoin="round"/>"#
    );
}

fn markers(s: &mut String, xy: &[(f64, f64)], color: &str) {
    for (x, y) in xy {
        let _ = writeln!(
            s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{color}"/>"#
        );
    }
}

/// A one-line legend just above the right end of `f`.
fn legend(s: &mut String, f: &Frame, entries: &[(&str, &str)]) {
    let widths: Vec<f64> = entries
        .iter()
        .map(|(_, label)| 24.0 + 7.0 * label.chars().count() as f64 + 16.0)
        .collect();
    let mut x = f.x1 - widths.iter().sum::<f64>() + 16.0;
    let y = f.y0 - 8.0;
    for ((color, label), w) in entries.iter().zip(&widths) {
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2.5"/>"#,
            y - 4.0,
            x + 18.0,
            y - 4.0
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{y:.1}" font-size="12" fill="#222">{}</text>"##,
            x + 24.0,
            esc(label)
        );
        x += w;
    }
}

/// log10(1/(1−q)): 0 at the minimum, 1 at 90%, 2 at 99%, …
fn log_odds(q: f64) -> f64 {
    let tail = (1.0 - q).max(1e-12);
    -tail.log10()
}

/// Decades the x axis shows so that a curve reaching quantile `last_q` fits.
fn decades_for(last_q: f64) -> u32 {
    let needed = (log_odds(last_q) - 1e-6).ceil().max(0.0) as u32;
    needed.clamp(MIN_DECADES, MAX_DECADES)
}

/// "90%", "99%", "99.9%", … for decade `d` ≥ 1.
fn decade_label(d: u32) -> String {
    match d {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        d => format!("99.{}%", "9".repeat(d as usize - 2)),
    }
}

/// An axis from 0 that holds `max`: (top, tick step), the step 1, 2 or 5 × 10^k with about
/// `ticks` ticks.
fn nice_axis(max: f64, ticks: f64) -> (f64, f64) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 0.2);
    }
    let raw = max / ticks;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = mag
        * if norm <= 1.0 {
            1.0
        } else if norm <= 2.0 {
            2.0
        } else if norm <= 5.0 {
            5.0
        } else {
            10.0
        };
    ((max / step - 1e-9).ceil().max(1.0) * step, step)
}

/// A tick value with as many decimals as the step needs.
fn fmt_tick(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10() - 1e-9).ceil() as usize
    };
    format!("{v:.decimals$}")
}

/// A count tick: 12k, 1.5M (the unit follows the step, so one axis uses one unit).
fn fmt_si(v: f64, step: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if step >= 1e5 {
        format!("{}M", fmt_tick(v / 1e6, step / 1e6))
    } else if step >= 1e3 {
        format!("{}k", fmt_tick(v / 1e3, step / 1e3))
    } else {
        fmt_tick(v, step)
    }
}

/// A latency in ms with about three significant digits.
fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny well-formedness check: tags balance, the root is `svg`, every `&` starts an
    /// entity and no text holds a raw `>`.
    fn check_xml(svg: &str) -> Result<(), String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut root = None;
        let mut rest = svg;
        loop {
            let (text, tail) = match rest.find('<') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if text.contains('>') {
                return Err(format!("raw > in text {text:?}"));
            }
            check_entities(text)?;
            let Some(tail) = tail else { break };
            let end = tail.find('>').ok_or("unterminated tag")?;
            let tag = &tail[..end];
            rest = &tail[end + 1..];
            check_entities(tag)?;
            if tag.contains('<') {
                return Err(format!("< inside tag {tag:?}"));
            }
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
                continue;
            }
            let name = tag
                .split_whitespace()
                .next()
                .ok_or("empty tag")?
                .trim_end_matches('/');
            if stack.is_empty() {
                if root.is_some() {
                    return Err("second root element".into());
                }
                root = Some(name);
            }
            if !tag.ends_with('/') {
                stack.push(name);
            }
            // Attributes: quotes balance.
            if tag.matches('"').count() % 2 != 0 {
                return Err(format!("unbalanced quotes in {tag:?}"));
            }
        }
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        if root != Some("svg") {
            return Err(format!("root is {root:?}"));
        }
        Ok(())
    }

    fn check_entities(text: &str) -> Result<(), String> {
        for (i, _) in text.match_indices('&') {
            let after = &text[i..];
            if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"]
                .iter()
                .any(|e| after.starts_with(e))
            {
                return Err(format!("bare & in {text:?}"));
            }
        }
        Ok(())
    }

    fn assert_xml(svg: &str) {
        if let Err(e) = check_xml(svg) {
            panic!("not well-formed: {e}\n{svg}");
        }
    }

    #[test]
    fn checker_rejects_broken_xml() {
        assert!(check_xml("<svg><g></svg>").is_err());
        assert!(check_xml("<svg><text>a & b</text></svg>").is_err());
        assert!(check_xml("<svg></svg><svg></svg>").is_err());
        assert!(check_xml("<svg><g/><text>a &amp; b</text></svg>").is_ok());
    }

    fn sample_points() -> Vec<(f64, f64)> {
        vec![
            (0.0, 0.5),
            (0.5, 1.0),
            (0.9, 2.0),
            (0.99, 4.0),
            (0.999, 8.0),
            (1.0, 10.0),
        ]
    }

    #[test]
    fn latency_plot_is_well_formed_with_axis_labels() {
        let svg = latency_svg(&sample_points(), "broadcast\nn = 6");
        assert_xml(&svg);
        for label in [
            ">50%<",
            ">90%<",
            ">99%<",
            ">99.9%<",
            ">99.99%<",
            ">99.999%<",
            "latency (ms)",
            "percentile",
            "max 10.0 ms",
            ">broadcast<",
            ">n = 6<",
        ] {
            assert!(svg.contains(label), "{label} missing:\n{svg}");
        }
        assert!(!svg.contains("no data"));
    }

    #[test]
    fn latency_point_lands_where_expected() {
        let svg = latency_svg(&sample_points(), "t");
        // Max 10 ms: y axis 0..10 (step 2); five decades across the width. p99 = 4 ms sits
        // 2/5 across and 4/10 up.
        let x = LEFT + (RIGHT - LEFT) * 2.0 / 5.0;
        let y = LAT_BOTTOM - (LAT_BOTTOM - TOP) * 0.4;
        let point = format!("{x:.1},{y:.1}");
        let line = svg
            .lines()
            .find(|l| l.starts_with("<polyline"))
            .unwrap_or("");
        assert!(line.contains(&point), "{point} not in {line}");
        // The minimum at the left edge, on the 0.5 ms level.
        let y_min = LAT_BOTTOM - (LAT_BOTTOM - TOP) * 0.05;
        assert!(
            line.contains(&format!("points=\"{LEFT:.1},{y_min:.1} ")),
            "{line}"
        );
        // The maximum is a dashed line at the top of the axis, not a curve point.
        assert!(
            svg.contains(&format!(
                "y1=\"{TOP:.1}\" x2=\"{RIGHT:.1}\" y2=\"{TOP:.1}\" stroke=\"{MAX_COLOR}\""
            )),
            "{svg}"
        );
    }

    #[test]
    fn latency_axis_grows_for_deep_tails() {
        let mut pts = sample_points();
        pts.insert(5, (0.999_999, 9.0));
        let svg = latency_svg(&pts, "t");
        assert_xml(&svg);
        assert!(svg.contains(">99.9999%<"));
        assert!(!svg.contains(">99.99999%<"));
    }

    #[test]
    fn empty_input_gives_no_data_plots() {
        for svg in [
            latency_svg(&[], "empty"),
            timeline_svg(&[], "empty"),
            latency_svg(&[(f64::NAN, 1.0)], "nan"),
        ] {
            assert_xml(&svg);
            assert!(svg.contains(">no data<"), "{svg}");
        }
    }

    #[test]
    fn timeline_without_deliveries_says_so() {
        let idle: Vec<SecondSample> = (1..=3)
            .map(|t| SecondSample {
                t_s: f64::from(t),
                delivered_per_s: 0.0,
                p50_ms: None,
                p99_ms: None,
            })
            .collect();
        let svg = timeline_svg(&idle, "idle");
        assert_xml(&svg);
        assert!(svg.contains(">no data<"), "{svg}");
        // No latency marks: no p99 line, no p99 markers (the legend alone names the colour).
        assert!(
            !svg.lines()
                .any(|l| (l.starts_with("<polyline") || l.starts_with("<circle"))
                    && l.contains(P99_COLOR)),
            "{svg}"
        );
    }

    #[test]
    fn titles_are_escaped() {
        let title = "a <b> & \"c\" 'd'\u{7}";
        for svg in [
            latency_svg(&sample_points(), title),
            timeline_svg(&[], title),
        ] {
            assert_xml(&svg);
            assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; "));
        }
    }

    fn sample_seconds() -> Vec<SecondSample> {
        (0..=10)
            .map(|t| SecondSample {
                t_s: f64::from(t),
                delivered_per_s: if t < 2 { 0.0 } else { 20_000.0 },
                p50_ms: (t >= 2).then_some(1.0),
                p99_ms: (t >= 2).then_some(if t == 5 { 8.0 } else { 4.0 }),
            })
            .collect()
    }

    #[test]
    fn timeline_is_well_formed_with_labels() {
        let svg = timeline_svg(&sample_seconds(), "broadcast — over time");
        assert_xml(&svg);
        for label in [
            "delivered / s",
            "latency per second (ms)",
            "seconds since the workers started",
            ">p99<",
            ">p50<",
            ">20k<",
            ">10<",
        ] {
            assert!(svg.contains(label), "{label} missing:\n{svg}");
        }
    }

    #[test]
    fn timeline_point_lands_where_expected() {
        let svg = timeline_svg(&sample_seconds(), "t");
        // x: 0..10 s. p99 axis 0..8 ms (max 8, step 2). t = 5 s with p99 8 ms: halfway across,
        // at the top of the latency panel.
        let x = LEFT + (RIGHT - LEFT) * 0.5;
        let p99 = format!("{x:.1},{TL_LAT_TOP:.1}");
        let p99_line = svg
            .lines()
            .find(|l| l.starts_with("<polyline") && l.contains(P99_COLOR))
            .unwrap_or("");
        assert!(p99_line.contains(&p99), "{p99} not in {p99_line}");
        // Seconds 0 and 1 had no deliveries: the p99 line starts at t = 2 s.
        let x2 = LEFT + (RIGHT - LEFT) * 0.2;
        assert!(
            p99_line.contains(&format!("points=\"{x2:.1},")),
            "{p99_line}"
        );
        // Delivered/s at 20k is the top of the rate panel (axis 0..20k).
        let rate = format!("{x:.1},{TOP:.1}");
        let rate_line = svg
            .lines()
            .find(|l| l.starts_with("<polyline") && l.contains(RATE_COLOR))
            .unwrap_or("");
        assert!(rate_line.contains(&rate), "{rate} not in {rate_line}");
    }

    #[test]
    fn nice_axes() {
        assert_eq!(nice_axis(10.0, 5.0), (10.0, 2.0));
        assert_eq!(nice_axis(0.0, 5.0), (1.0, 0.2));
        assert_eq!(nice_axis(11.0, 8.0), (12.0, 2.0));
        let (top, step) = nice_axis(0.37, 5.0);
        assert!(
            (step - 0.1).abs() < 1e-12 && (top - 0.4).abs() < 1e-12,
            "{top} {step}"
        );
        assert_eq!(fmt_tick(0.30000000000000004, 0.1), "0.3");
        assert_eq!(fmt_si(15_000.0, 5_000.0), "15k");
        assert_eq!(fmt_si(0.0, 5_000.0), "0");
        assert_eq!(fmt_si(2_500_000.0, 500_000.0), "2.5M");
        assert_eq!(decade_label(5), "99.999%");
    }

    #[test]
    fn points_come_from_the_histogram() {
        let mut h = crate::stats::new_histogram();
        for v in 1..=10_000u64 {
            h.saturating_record(v);
        }
        let pts = latency_points(&h);
        assert_eq!(pts.last().map(|p| p.0), Some(1.0));
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert!(latency_points(&crate::stats::new_histogram()).is_empty());
    }
}
