//! A hand-written SVG chart of the report: latency percentiles over time for each phase,
//! latency by fleet size, and server memory by fleet size.

use std::fmt::Write as _;

use super::report::Report;

const W: f64 = 560.0;
const H: f64 = 220.0;
const PAD: f64 = 48.0;
const COLORS: [&str; 3] = ["#1f77b4", "#ff7f0e", "#d62728"];

/// One panel: named series of (x, y) points on linear axes from zero.
struct Panel<'a> {
    title: String,
    x_label: &'a str,
    y_label: &'a str,
    series: Vec<(&'a str, Vec<(f64, f64)>)>,
}

fn panel(out: &mut String, top: f64, p: &Panel) {
    let points = p.series.iter().flat_map(|(_, v)| v.iter());
    let (mut xmax, mut ymax) = (0.0f64, 0.0f64);
    for &(x, y) in points {
        xmax = xmax.max(x);
        ymax = ymax.max(y);
    }
    let (xmax, ymax) = (xmax.max(1.0), ymax.max(0.001) * 1.1);
    let sx = |x: f64| PAD + x / xmax * (W - 2.0 * PAD);
    let sy = |y: f64| top + H - PAD / 2.0 - y / ymax * (H - PAD);
    let (x0, y0) = (sx(0.0), sy(0.0));
    let _ = writeln!(
        out,
        r#"<text x="{PAD}" y="{}" font-weight="bold">{}</text>"#,
        top + 16.0,
        escape(&p.title)
    );
    let _ = writeln!(
        out,
        r##"<path d="M{x0} {} V{y0} H{}" stroke="#444" fill="none"/>"##,
        sy(ymax),
        sx(xmax)
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="end">{:.3}</text><text x="{}" y="{}" text-anchor="end">0</text>"#,
        x0 - 4.0,
        sy(ymax) + 4.0,
        ymax,
        x0 - 4.0,
        y0 + 4.0
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="end">{} (max {xmax:.0})</text><text x="4" y="{}">{}</text>"#,
        sx(xmax),
        y0 + 18.0,
        escape(p.x_label),
        top + 32.0,
        escape(p.y_label)
    );
    for (i, (name, pts)) in p.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"/>"#,
            path.join(" ")
        );
        for &(x, y) in pts {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2" fill="{color}"/>"#,
                sx(x),
                sy(y)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" fill="{color}">{}</text>"#,
            W - PAD - 120.0 + 0.0 * i as f64,
            top + 16.0 + 14.0 * i as f64,
            escape(name)
        );
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn panels(r: &Report) -> Vec<Panel<'_>> {
    let mut out = Vec::new();
    for p in &r.phases {
        let pick = |f: fn(&super::drive::Latency) -> f64| -> Vec<(f64, f64)> {
            (p.timeline.iter())
                .map(|w| (w.second as f64, f(&w.latency)))
                .collect()
        };
        out.push(Panel {
            title: format!("{}: latency per second ({:.0}/s)", p.name, p.rate),
            x_label: "seconds",
            y_label: "ms",
            series: vec![
                ("p50", pick(|l| l.p50_ms)),
                ("p90", pick(|l| l.p90_ms)),
                ("p99", pick(|l| l.p99_ms)),
            ],
        });
    }
    let probes = |f: fn(&super::drive::Latency) -> f64| -> Vec<(f64, f64)> {
        (r.fleet.iter())
            .filter_map(|s| s.probe.as_ref().map(|l| (s.routers as f64, f(l))))
            .collect()
    };
    if probes(|l| l.p50_ms).len() >= 2 {
        out.push(Panel {
            title: "execute-command latency by fleet size".into(),
            x_label: "routers",
            y_label: "ms",
            series: vec![("p50", probes(|l| l.p50_ms)), ("p99", probes(|l| l.p99_ms))],
        });
    }
    let rss: Vec<(f64, f64)> = (r.fleet.iter())
        .filter_map(|s| s.rss_kib.map(|k| (s.routers as f64, k as f64 / 1024.0)))
        .collect();
    if rss.len() >= 2 {
        out.push(Panel {
            title: "server resident memory by open sessions".into(),
            x_label: "routers",
            y_label: "MiB",
            series: vec![("VmRSS", rss)],
        });
    }
    out
}

/// The whole chart as an SVG document.
pub fn chart(r: &Report) -> String {
    let panels = panels(r);
    let height = H * panels.len().max(1) as f64;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    out.push('\n');
    for (i, p) in panels.iter().enumerate() {
        panel(&mut out, i as f64 * H, p);
    }
    out.push_str("</svg>\n");
    out
}
