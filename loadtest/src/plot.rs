//! `--plot FILE.jsonl`: draws the `--json` result lines of one file as an
//! SVG next to it (FILE.svg): latency percentiles per server (log scale)
//! and deliveries/s per server, medians over the runs of each server.
//!
//! Hand-written SVG rather than a plotting crate: two grouped bar charts
//! are ~150 lines of plain text with no fonts, no dependencies and a
//! byte-stable output that diffs well in the repository; a charting crate
//! (plotters) would add its backend crates for no feature used here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One server's medians.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    pub runs: usize,
    /// p50, p90, p99, p99.9 in ms.
    pub latency_ms: [f64; 4],
    pub deliveries_per_s: f64,
    pub pct_of_offered: Option<f64>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Medians per server (per `scenario / server` when the file mixes
/// scenarios), in order of first appearance; skipped runs are left out.
pub fn rows(jsonl: &str) -> Result<Vec<Row>, String> {
    let mut runs: Vec<serde_json::Value> = Vec::new();
    for (i, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if v.get("skipped").is_none() {
            runs.push(v);
        }
    }
    let scenarios: std::collections::BTreeSet<&str> =
        runs.iter().filter_map(|r| r["scenario"].as_str()).collect();
    let label = |r: &serde_json::Value| {
        let server = r["server"].as_str().unwrap_or("?");
        if scenarios.len() > 1 {
            format!("{} / {server}", r["scenario"].as_str().unwrap_or("?"))
        } else {
            server.to_string()
        }
    };
    let mut labels: Vec<String> = Vec::new();
    for r in &runs {
        let l = label(r);
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    labels
        .into_iter()
        .map(|l| {
            let mine: Vec<&serde_json::Value> = runs.iter().filter(|r| label(r) == l).collect();
            let med = |f: &dyn Fn(&serde_json::Value) -> Option<f64>| {
                median(mine.iter().filter_map(|r| f(r)).collect())
            };
            let lat = |key: &str| med(&|r| r["latency_ms"][key].as_f64()).unwrap_or(f64::NAN);
            Ok(Row {
                runs: mine.len(),
                latency_ms: [lat("p50"), lat("p90"), lat("p99"), lat("p99_9")],
                deliveries_per_s: med(&|r| r["deliveries_per_s"].as_f64())
                    .ok_or_else(|| format!("{l}: no deliveries_per_s"))?,
                pct_of_offered: med(&|r| r["pct_of_offered"].as_f64()),
                label: l,
            })
        })
        .collect()
}

const W: f64 = 900.0;
const PANEL_H: f64 = 300.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const COLORS: [&str; 4] = ["#4e79a7", "#59a14f", "#f28e2b", "#e15759"];
const NAMES: [&str; 4] = ["p50", "p90", "p99", "p99.9"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn short(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The SVG of `rows` under `title`.
pub fn svg(title: &str, rows: &[Row]) -> String {
    let mut s = String::new();
    let h = 60.0 + 2.0 * (PANEL_H + 40.0);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    latency_panel(&mut s, rows, 50.0);
    deliveries_panel(&mut s, rows, 50.0 + PANEL_H + 40.0);
    s.push_str("</svg>\n");
    s
}

fn group_x(i: usize, n: usize) -> (f64, f64) {
    let width = (W - LEFT - RIGHT) / n.max(1) as f64;
    (LEFT + width * i as f64, width)
}

fn latency_panel(s: &mut String, rows: &[Row], top: f64) {
    let plot_top = top + 30.0;
    let plot_h = PANEL_H - 60.0;
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.latency_ms)
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .log10()
        .floor()
        .min(-1.0);
    let hi = values
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let y = |v: f64| plot_top + plot_h * (1.0 - (v.log10() - lo) / (hi - lo));
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="{}" font-size="14">Latency, publish to client (ms, log scale), median of runs</text>"#,
        top + 14.0
    );
    for d in (lo as i32)..=(hi as i32) {
        let v = 10f64.powi(d);
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            short(v)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let (gx, gw) = group_x(i, rows.len());
        let bw = (gw * 0.8 / 4.0).min(40.0);
        let start = gx + (gw - bw * 4.0) / 2.0;
        for (k, v) in r.latency_ms.iter().enumerate() {
            if !(v.is_finite() && *v > 0.0) {
                continue;
            }
            let x = start + bw * k as f64;
            let yy = y(*v).min(plot_top + plot_h);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {v} ms</title></rect><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
                bw - 2.0,
                plot_top + plot_h - yy,
                COLORS[k],
                esc(&r.label),
                NAMES[k],
                x + bw / 2.0 - 1.0,
                yy - 3.0,
                short(*v)
            );
        }
        label(s, r, gx + gw / 2.0, plot_top + plot_h + 16.0);
    }
    for (k, name) in NAMES.iter().enumerate() {
        let x = W - RIGHT - 4.0 * 60.0 + 60.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{name}</text>"#,
            top + 4.0,
            COLORS[k],
            x + 14.0,
            top + 13.0
        );
    }
}

fn label(s: &mut String, r: &Row, x: f64, y: f64) {
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle">{} ({} run{})</text>"#,
        esc(&r.label),
        r.runs,
        if r.runs == 1 { "" } else { "s" }
    );
}

fn deliveries_panel(s: &mut String, rows: &[Row], top: f64) {
    let plot_top = top + 30.0;
    let plot_h = PANEL_H - 60.0;
    let max = rows
        .iter()
        .map(|r| r.deliveries_per_s)
        .fold(0.0, f64::max)
        .max(1.0);
    // a round top: 1, 2 or 5 times a power of ten
    let p = 10f64.powf(max.log10().floor());
    let top_v = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * p);
    let y = |v: f64| plot_top + plot_h * (1.0 - v / top_v);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="{}" font-size="14">Deliveries/s (messages received by all clients), median of runs</text>"#,
        top + 14.0
    );
    for k in 0..=5 {
        let v = top_v * k as f64 / 5.0;
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            short(v)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let (gx, gw) = group_x(i, rows.len());
        let bw = (gw * 0.5).min(120.0);
        let x = gx + (gw - bw) / 2.0;
        let yy = y(r.deliveries_per_s);
        let pct = r
            .pct_of_offered
            .map(|p| format!(" ({p:.1}% of offered)"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            r##"<rect x="{x:.1}" y="{yy:.1}" width="{bw:.1}" height="{:.1}" fill="#4e79a7"><title>{}: {:.0}/s{pct}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle">{}{pct}</text>"##,
            plot_top + plot_h - yy,
            esc(&r.label),
            r.deliveries_per_s,
            x + bw / 2.0,
            yy - 4.0,
            short(r.deliveries_per_s)
        );
        label(s, r, gx + gw / 2.0, plot_top + plot_h + 16.0);
    }
}

/// Reads `jsonl`, writes the SVG beside it and returns its path.
pub fn write_svg(jsonl: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(jsonl).map_err(|e| format!("{}: {e}", jsonl.display()))?;
    let rows = rows(&text).map_err(|e| format!("{}: {e}", jsonl.display()))?;
    if rows.is_empty() {
        return Err(format!("{}: no result lines to plot", jsonl.display()));
    }
    let title = jsonl
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let out = jsonl.with_extension("svg");
    std::fs::write(&out, svg(&title, &rows)).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &str = r#"
{"scenario":"light","server":"tickwire","deliveries_per_s":100000.0,"pct_of_offered":100.0,"latency_ms":{"p50":0.4,"p90":0.8,"p99":2.0,"p99_9":5.0,"max":9.0}}
{"scenario":"light","server":"tickwire","deliveries_per_s":90000.0,"pct_of_offered":90.0,"latency_ms":{"p50":0.6,"p90":1.0,"p99":3.0,"p99_9":6.0,"max":9.0}}
{"scenario":"light","server":"node-ws","deliveries_per_s":50000.0,"pct_of_offered":null,"latency_ms":{"p50":4.0,"p90":8.0,"p99":20.0,"p99_9":50.0,"max":90.0}}
{"scenario":"light","server":"naive-rust","skipped":"scenario has no peer equivalent"}
"#;

    #[test]
    fn medians_per_server_in_order_without_skipped() {
        let rows = rows(LINES).expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].label, "tickwire");
        assert_eq!(rows[0].runs, 2);
        assert_eq!(rows[0].deliveries_per_s, 95000.0);
        assert_eq!(rows[0].latency_ms, [0.5, 0.9, 2.5, 5.5]);
        assert_eq!(rows[0].pct_of_offered, Some(95.0));
        assert_eq!(rows[1].pct_of_offered, None);
    }

    #[test]
    fn svg_has_a_bar_per_percentile_and_server() {
        let rows = rows(LINES).expect("parses");
        let svg = svg("light <test>", &rows);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("light &lt;test&gt;"));
        // 4 percentile bars + 1 deliveries bar per server, plus the background
        // and the 4 legend swatches
        assert_eq!(svg.matches("<rect").count(), 2 * 5 + 1 + 4);
        assert!(svg.contains("tickwire p99.9: 5.5 ms"));
        assert!(svg.contains("95.0k (95.0% of offered)"));
    }

    #[test]
    fn a_bad_line_is_an_error_naming_it() {
        let err = rows("{\"server\":1}\nnot json\n").expect_err("bad line");
        assert!(err.starts_with("line 2:"), "{err}");
    }
}
