//! The report as one HTML file: inline style, inline SVG charts, the logo as a data URL,
//! no script, and a content security policy that forbids fetching anything, so it opens
//! the same offline, in a mail client or printed. Every text from the estate goes
//! through maud's escaping.

use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::rules::{SEVERITIES, rank};
use super::{Assessment, AssetRow, FindingRow};

const CSS: &str = r#"
body{font:14px/1.45 "Segoe UI",system-ui,-apple-system,"Noto Sans",sans-serif;color:#1d232a;margin:0;background:#fff}
main{max-width:1100px;margin:0 auto;padding:28px 32px}
header{display:flex;align-items:center;gap:24px;border-bottom:3px solid #0b5cad;padding-bottom:16px}
header img{max-height:64px;max-width:200px}
h1{font-size:26px;margin:0}h2{font-size:19px;margin:32px 0 10px;color:#0b5cad;border-bottom:1px solid #d5dde6;padding-bottom:4px}
.meta{color:#55606e}
section{page-break-inside:auto}
.score{display:flex;gap:28px;align-items:center;margin:18px 0}
.dial{width:120px;height:120px;border-radius:50%;display:flex;flex-direction:column;align-items:center;justify-content:center;color:#fff;font-weight:700}
.dial b{font-size:40px;line-height:1}.dial span{font-size:14px}
.good{background:#2e7d32}.fair{background:#b26a00}.poor{background:#c62828}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e8ee;vertical-align:top}
th{background:#f3f6f9;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.sev{display:inline-block;min-width:58px;text-align:center;border-radius:3px;padding:1px 6px;font-size:12px;font-weight:600;color:#fff}
.critical{background:#8e0000}.high{background:#c62828}.medium{background:#ef8f00}.low{background:#5c7c99}.info{background:#8a96a3}
.st-protected{color:#2e7d32}.st-stale{color:#b26a00}.st-unprotected{color:#c62828}.st-unknown{color:#55606e}
ol.actions li{margin:6px 0}
.charts{display:flex;flex-wrap:wrap;gap:24px}
.chart{flex:1 1 300px}
.chart h3{font-size:14px;margin:4px 0}
.small{font-size:12px;color:#55606e}
code{font-size:12px}
@media print{main{padding:0}h2{page-break-after:avoid}tr{page-break-inside:avoid}}
"#;

/// The report's sections, in order. `report.html#only-<id>` shows that section alone
/// (CSS `:target`, no script): for a screenshot, or to send one part.
pub const SECTIONS: [&str; 8] = [
    "summary",
    "charts",
    "clusters",
    "workloads",
    "findings",
    "sizing",
    "sweep",
    "assets",
];

fn only_css() -> String {
    SECTIONS
        .iter()
        .map(|id| format!("body:has(#only-{id}:target) section:not(#{id}){{display:none}}"))
        .collect()
}

/// MiB as the report shows sizes.
fn size(mib: u64) -> String {
    let m = mib as f64;
    if m >= 1024.0 * 1024.0 {
        format!("{:.1} TiB", m / 1024.0 / 1024.0)
    } else if m >= 1024.0 {
        format!("{:.1} GiB", m / 1024.0)
    } else {
        format!("{mib} MiB")
    }
}

fn count<'a>(label: &'a str, n: usize, color: &'a str) -> (&'a str, u64, String, &'a str) {
    (label, n as u64, n.to_string(), color)
}

fn sev(s: &str) -> Markup {
    let class = if SEVERITIES.contains(&s) { s } else { "info" };
    html! { span class={ "sev " (class) } { (s) } }
}

fn dial_class(score: u32) -> &'static str {
    match score {
        75.. => "good",
        50..=74 => "fair",
        _ => "poor",
    }
}

/// A horizontal bar of parts, with a legend.
fn stacked(parts: &[(&str, u64, String, &str)]) -> Markup {
    let total: u64 = parts.iter().map(|p| p.1).sum::<u64>().max(1);
    let mut x = 0.0;
    let placed: Vec<(f64, f64, &str, &str, &str)> = parts
        .iter()
        .map(|(label, n, shown, color)| {
            let w = 300.0 * (*n as f64) / total as f64;
            x += w;
            (x - w, w, *label, shown.as_str(), *color)
        })
        .collect();
    html! {
        svg width="100%" height="34" viewBox="0 0 300 34" preserveAspectRatio="none" role="img" {
            @for (x, w, label, n, color) in &placed {
                rect x=(format!("{x:.2}")) y="0" width=(format!("{w:.2}")) height="34" fill=(color) { title { (label) ": " (n) } }
            }
        }
        div class="small" {
            @for (label, _, shown, color) in parts {
                span style={ "color:" (color) } { "■ " } (label) " " (shown) "  "
            }
        }
    }
}

/// Vertical bars, one per label.
fn bars(parts: &[(&str, usize, &str)]) -> Markup {
    let max = parts.iter().map(|p| p.1).max().unwrap_or(0).max(1);
    let w = 300.0 / parts.len().max(1) as f64;
    html! {
        svg width="100%" height="150" viewBox="0 0 300 150" role="img" {
            @for (i, (label, n, color)) in parts.iter().enumerate() {
                @let h = 100.0 * (*n as f64) / max as f64;
                @let x = i as f64 * w;
                rect x=(format!("{:.2}", x + w * 0.15)) y=(format!("{:.2}", 120.0 - h)) width=(format!("{:.2}", w * 0.7)) height=(format!("{h:.2}")) fill=(color) {}
                text x=(format!("{:.2}", x + w / 2.0)) y=(format!("{:.2}", 115.0 - h)) font-size="11" text-anchor="middle" { (n) }
                text x=(format!("{:.2}", x + w / 2.0)) y="138" font-size="11" text-anchor="middle" { (label) }
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    assets: usize,
    protected: usize,
    stale: usize,
    unprotected: usize,
    unknown: usize,
    serious: usize,
    mib: u64,
    sized: usize,
}

impl Tally {
    fn add(&mut self, a: &AssetRow) {
        self.assets += 1;
        match a.status.as_str() {
            "protected" => self.protected += 1,
            "stale" => self.stale += 1,
            "unprotected" => self.unprotected += 1,
            _ => self.unknown += 1,
        }
        if let Some(m) = a.size_mib {
            self.mib = self.mib.saturating_add(m);
            self.sized += 1;
        }
    }
}

fn tally_by<'a>(
    a: &'a Assessment,
    key: impl Fn(&'a AssetRow) -> &'a str,
) -> BTreeMap<&'a str, Tally> {
    let mut out: BTreeMap<&str, Tally> = BTreeMap::new();
    let serious = |f: &&FindingRow| rank(&f.severity) <= rank("high");
    for r in a.assets.iter().filter(|r| r.status != "container") {
        let t = out.entry(key(r)).or_default();
        t.add(r);
        t.serious += a
            .findings
            .iter()
            .filter(serious)
            .filter(|f| f.asset.as_deref() == Some(r.id.as_str()))
            .count();
    }
    out
}

fn tally_table(first: &str, rows: &BTreeMap<&str, Tally>) -> Markup {
    html! {
        table {
            tr { th { (first) } th class="n" { "Assets" } th class="n" { "Protected" } th class="n" { "Stale" }
                 th class="n" { "Unprotected" } th class="n" { "Not judged" } th class="n" { "High or worse" } th class="n" { "Data" } }
            @for (k, t) in rows {
                tr { td { (k) } td class="n" { (t.assets) } td class="n st-protected" { (t.protected) } td class="n st-stale" { (t.stale) }
                     td class="n st-unprotected" { (t.unprotected) } td class="n st-unknown" { (t.unknown) } td class="n" { (t.serious) } td class="n" { @if t.sized > 0 { (size(t.mib)) } @else { "-" } } }
            }
        }
    }
}

/// The whole report.
pub fn render(a: &Assessment) -> String {
    let s = &a.summary;
    let l = &a.labels;
    let c = &s.coverage;
    let z = &a.sizing;
    let title = if l.customer.is_empty() {
        "Backup and recovery assessment".to_string()
    } else {
        format!("Backup and recovery assessment: {}", l.customer)
    };
    let sev_bars: Vec<(&str, usize, &str)> = SEVERITIES
        .iter()
        .zip(["#8e0000", "#c62828", "#ef8f00", "#5c7c99", "#8a96a3"])
        .map(|(k, color)| (*k, s.by_severity.get(*k).copied().unwrap_or(0), color))
        .collect();
    let clusters = tally_by(a, |r| r.group.as_str());
    let workloads = tally_by(a, |r| r.plugin.as_str());
    let names = |f: &FindingRow| {
        f.asset_name
            .clone()
            .or_else(|| f.asset.clone())
            .unwrap_or_else(|| "the estate".into())
    };
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) (PreEscaped(only_css())) }
            }
            body { main {
                @for id in SECTIONS { i id={ "only-" (id) } {} }
                header id="top" {
                    @if let Some(logo) = &l.logo {
                        img alt="logo" src={ "data:" (logo.mime) ";base64," (logo.base64) };
                    }
                    div {
                        h1 { (title) }
                        div class="meta" {
                            "Made " (a.generated.format("%Y-%m-%d %H:%M UTC"))
                            @if !l.consultant.is_empty() { " by " (l.consultant) }
                            " with Rehydra " (a.rehydra_version)
                        }
                        @if !l.scope.is_empty() { div class="meta" { "Scope: " (l.scope) } }
                    }
                }
                section id="summary" {
                    h2 { "Executive summary" }
                    div class="score" {
                        div class={ "dial " (dial_class(s.score)) } { b { (s.score) } span { "grade " (s.grade) } }
                        div {
                            p { (a.assets.iter().filter(|r| r.status != "container").count()) " assets found by "
                                (a.sweep.iter().filter(|w| w.status == "swept").count()) " plugin(s); "
                                (a.findings.len()) " findings, " (s.by_severity.get("critical").copied().unwrap_or(0)) " critical and "
                                (s.by_severity.get("high").copied().unwrap_or(0)) " high." }
                            @if a.repositories.is_empty() {
                                p { strong { "Protection was not judged:" } " no repository was joined to this assessment." }
                            } @else {
                                p { (c.protected) " protected within the RPO of " (a.thresholds.rpo_hours) " h, " (c.stale) " stale, " (c.unprotected) " without any restore point." }
                            }
                        }
                    }
                    h3 { "What to do first" }
                    @if s.top_actions.is_empty() {
                        p { "Nothing above information level was found." }
                    } @else {
                        ol class="actions" {
                            @for x in &s.top_actions {
                                li { (sev(&x.severity)) " " strong { (x.title) } @if x.assets > 0 { " (" (x.assets) " asset(s))" } br; (x.recommendation) }
                            }
                        }
                    }
                }
                section id="charts" {
                    h2 { "At a glance" }
                    div class="charts" {
                        div class="chart" { h3 { "Protection coverage" }
                            (stacked(&[count("protected", c.protected, "#2e7d32"), count("stale", c.stale, "#ef8f00"), count("unprotected", c.unprotected, "#c62828"), count("not judged", c.unknown, "#8a96a3")])) }
                        div class="chart" { h3 { "Findings by severity" } (bars(&sev_bars)) }
                        div class="chart" { h3 { "Capacity" }
                            (stacked(&[("protected", z.protected_mib, size(z.protected_mib), "#2e7d32"), ("not protected or not judged", z.unprotected_mib, size(z.unprotected_mib), "#c62828")])) }
                    }
                }
                section id="clusters" {
                    h2 { "Per cluster" }
                    (tally_table("Cluster or scope", &clusters))
                    @for r in a.assets.iter().filter(|r| !r.facts.is_empty()) {
                        h3 { (r.kind) " " (r.name) }
                        table class="facts" {
                            @for p in &r.facts { tr { td { (p.name) } td { (p.value) } } }
                        }
                    }
                }
                section id="workloads" {
                    h2 { "Per workload" }
                    (tally_table("Plugin", &workloads))
                }
                section id="findings" {
                    h2 { "Findings" }
                    table {
                        tr { th { "Severity" } th { "Finding" } th { "Asset" } th { "Evidence" } th { "Recommendation" } }
                        @for f in &a.findings {
                            tr { td { (sev(&f.severity)) } td { strong { (f.title) } br; code { (f.source) " · " (f.rule) } }
                                 td { (names(f)) } td { (f.evidence) } td { (f.recommendation) } }
                        }
                    }
                }
                section id="sizing" {
                    h2 { "Sizing" }
                    table {
                        tr { td { "Data found (sized assets)" } td class="n" { (size(z.total_mib)) } }
                        tr { td { "Of which protected" } td class="n" { (size(z.protected_mib)) } }
                        tr { td { "Of which not protected or not judged" } td class="n" { (size(z.unprotected_mib)) } }
                        tr { td { "Estimated first full backup, stored" } td class="n" { (size(z.first_full_mib)) } }
                        tr { td { "Estimated daily change, stored" } td class="n" { (size(z.daily_change_mib)) } }
                        tr { td { "Estimated repository after " (z.retention_days) " days' retention" } td class="n" { (size(z.repository_mib)) } }
                    }
                    p class="small" { "Based on: " (z.basis.join("; ")) "." }
                }
                section id="sweep" {
                    h2 { "What was assessed" }
                    table {
                        tr { th { "Plugin" } th { "Result" } th class="n" { "Assets" } th class="n" { "Findings" } th { "Detail" } }
                        @for w in &a.sweep {
                            tr { td { (w.plugin) } td { (w.status) } td class="n" { (w.assets) } td class="n" { (w.findings) } td { (w.detail) } }
                        }
                    }
                    @for r in &a.repositories {
                        p { "Repository " code { (r.id) } " (" (r.kind) "): " (r.restore_points) " restore points, reduction "
                            (format!("{:.2}", r.reduction_ratio)) ":1, " (r.policies) " policies, " (r.copying_policies) " with a copy." }
                    }
                    p class="small" { "Every plugin ran in read-only calls: the host refused writes over HTTP and LDAP and to files; commands and SQL queries the plugins ran were not restricted by the host. RPO "
                        (a.thresholds.rpo_hours) " h; restore test expected every " (a.thresholds.restore_test_days) " days." }
                }
                section id="assets" {
                    h2 { "Assets" }
                    table {
                        tr { th { "Name" } th { "Kind" } th { "Cluster or scope" } th { "Status" } th class="n" { "Restore points" } th class="n" { "Data" } th { "Flags" } }
                        @for r in a.assets.iter().filter(|r| r.status != "container") {
                            tr { td { (r.name) } td { (r.kind) } td { (r.group) } td class={ "st-" (r.status) } { (r.status) }
                                 td class="n" { (r.restore_points) } td class="n" { (r.size_mib.map_or_else(|| "-".to_string(), size)) } td { (r.flags.join(", ")) } }
                        }
                    }
                }
            } }
        }
    };
    doc.into_string()
}
