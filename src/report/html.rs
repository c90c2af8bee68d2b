//! The report as one self-contained HTML page a manager can open: inline CSS and SVG, no script,
//! no font or image fetched from anywhere (a `Content-Security-Policy` of `default-src 'none'`
//! says so to the browser), readable without JavaScript, printable, with semantic tables and a
//! text alternative for every chart.
//!
//! Every string that came from a vendor or a configuration file (product and holder names,
//! emails, ids, notes, error messages) goes through [`escape`].
//!
//! Key figures carry their raw value in a `data-value` attribute (money as exact decimal text,
//! counts as integers), so a test or a scraper can compare the page with the JSON report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{CostTotals, ProductRow, ReclaimReason, Report};
use licensekit_core::{Provenance, ProviderKind};

/// One product's seat figures in one stored snapshot: a point of the "utilization over time"
/// charts. Built from the history store (`licensekit::history`, feature `history`) by
/// `HistoryStoreExt::trends`; this module needs no database.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// The product's vendor.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product_id: String,
    /// The product's display name in that snapshot.
    pub name: String,
    /// When the snapshot was taken (UTC).
    pub taken_at: DateTime<Utc>,
    /// `None` when the provider could not be read in that snapshot (unknown, never zero).
    pub assigned: Option<u64>,
    /// `None` when unlimited or unknown.
    pub total: Option<u64>,
}

/// At most this many of the newest snapshots are charted.
pub const TREND_SNAPSHOTS: usize = 24;

/// The Content-Security-Policy of the page: nothing may be fetched; inline styles and `data:`
/// images only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A decimal with thousands separators and at least two decimals: `186660` -> `186,660.00`.
fn money(amount: Decimal) -> String {
    let text = if amount.scale() < 2 {
        format!("{amount:.2}")
    } else {
        amount.to_string()
    };
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// A money cell: formatted text (with the currency unless empty), exact value in `data-value`.
fn money_cell(amount: Option<Decimal>, currency: &str) -> String {
    match amount {
        Some(a) => format!(
            r#"<td class="num" data-value="{}">{}{}{}</td>"#,
            a,
            money(a),
            if currency.is_empty() { "" } else { " " },
            escape(currency)
        ),
        None => r#"<td class="num muted">—</td>"#.to_string(),
    }
}

fn provenance(p: Provenance) -> &'static str {
    match p {
        Provenance::Vendor => "vendor",
        Provenance::Counted => "counted",
        Provenance::Configured => "configured",
        Provenance::Unknown => "unknown",
    }
}

fn reason_text(reason: ReclaimReason, idle_days: Option<i64>) -> String {
    match reason {
        ReclaimReason::HolderInactive => "inactive at the vendor".into(),
        ReclaimReason::HolderUnknownToDirectory => "not in the vendor's directory".into(),
        ReclaimReason::InactiveForDays => match idle_days {
            Some(d) => format!("no sign-in for {d} days"),
            None => "no recent sign-in".into(),
        },
        ReclaimReason::ProductOverAllocated => "product over-allocated".into(),
    }
}

fn reason_key(reason: ReclaimReason) -> &'static str {
    match reason {
        ReclaimReason::HolderInactive => "holder_inactive",
        ReclaimReason::HolderUnknownToDirectory => "holder_unknown_to_directory",
        ReclaimReason::InactiveForDays => "inactive_for_days",
        ReclaimReason::ProductOverAllocated => "product_over_allocated",
    }
}

const STYLE: &str = r#"
:root { --ink:#1d2430; --muted:#5b6678; --line:#d9dee7; --bg:#f6f7fa; --ok:#2f7d4f; --warn:#b26a00; --bad:#b3261e; --bar:#3b6fd8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: var(--bg); }
main { max-width: 1120px; margin: 0 auto; padding: 24px 20px 48px; }
header.top { display: flex; justify-content: space-between; align-items: baseline; flex-wrap: wrap; gap: 8px; }
h1 { font-size: 26px; margin: 0; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
p.lead, .muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; margin: 16px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 20px; white-space: nowrap; font-weight: 650; font-variant-numeric: tabular-nums; }
.card.bad .value { color: var(--bad); } .card.warn .value { color: var(--warn); }
.scroll { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); border-radius: 8px; font-size: 14px; }
caption { text-align: left; color: var(--muted); padding: 0 0 6px; caption-side: top; }
figure { margin: 8px 0 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: middle; }
thead th { background: #eef1f6; font-weight: 600; }
tfoot td, tfoot th { font-weight: 650; background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.tag { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 12px; border: 1px solid var(--line); color: var(--muted); }
.tag.over { color: #fff; background: var(--bad); border-color: var(--bad); }
.tag.near { color: #fff; background: var(--warn); border-color: var(--warn); }
.src { font-size: 12px; color: var(--muted); }
svg.bar { display: block; }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; color: var(--muted); }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
.trends { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 12px; }
.trends figure { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; margin: 0; }
.trends figcaption { font-size: 14px; font-weight: 600; }
.trends figcaption .src { font-weight: 400; }
.trends + .scroll { margin-top: 12px; }
.note { background: #fff8e6; border: 1px solid #f0d9a8; border-radius: 6px; padding: 8px 12px; margin: 8px 0; }
.error { background: #fdecea; border-color: #f5c2bd; }
footer { margin-top: 36px; color: var(--muted); font-size: 13px; }
@media print {
  body { background: #fff; font-size: 11pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  tr, .card, svg, figure { break-inside: avoid; }
  table, .card { border-color: #999; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// Renders the whole report as one HTML page.
pub fn render(report: &Report) -> String {
    render_with_history(report, &[])
}

/// Renders the report with utilization over time per product from stored snapshots (`trends`,
/// oldest first; empty: no such section).
pub fn render_with_history(report: &Report, trends: &[TrendPoint]) -> String {
    let mut h = String::with_capacity(64 * 1024 + report.reclaim.len() * 300);
    let date = report.as_of.format("%Y-%m-%d %H:%M UTC").to_string();
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>License report — {date}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<header class="top"><h1>License report</h1><p class="muted">As of {date} · schema {schema}</p></header>
"#,
        csp = CONTENT_SECURITY_POLICY,
        schema = report.schema_version,
    );
    summary(&mut h, report);
    notes(&mut h, report);
    vendors(&mut h, report);
    utilization(&mut h, report);
    if !trends.is_empty() {
        over_time(&mut h, trends);
    }
    costs(&mut h, report);
    renewals(&mut h, report);
    reclaim(&mut h, report);
    unmatched(&mut h, report);
    let _ = write!(
        h,
        r#"<footer><p>Seat figures name their source: <b>vendor</b> (reported by the vendor's API), <b>counted</b> (counted from its assignment listing), <b>configured</b> (from the contracts in the configuration). Prices and renewals always come from the configured contracts. Sums are per currency, never converted. Last sign-in comes from the vendor where it reports one (Salesforce, Genesys Cloud), never estimated (Apple reports none).</p><p>Generated by licensekit at {}.</p></footer>
</main>
</body>
</html>
"#,
        report.generated_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    h
}

fn summary(h: &mut String, r: &Report) {
    let seats: u64 = r.providers.iter().map(|p| p.seats_total).sum();
    let assigned: u64 = r.providers.iter().map(|p| p.seats_assigned).sum();
    let over = r
        .products
        .iter()
        .filter(|p| p.over_allocated_by.is_some())
        .count();
    h.push_str(r#"<section aria-label="Summary"><div class="cards">"#);
    let _ = write!(
        h,
        r#"<div class="card"><div class="label">Seats owned (known totals)</div><div class="value" id="seats-owned" data-value="{seats}">{seats}</div></div>
<div class="card"><div class="label">Seats assigned</div><div class="value" id="seats-assigned" data-value="{assigned}">{assigned}</div></div>
<div class="card{over_class}"><div class="label">Products over-allocated</div><div class="value" data-value="{over}">{over}</div></div>
<div class="card warn"><div class="label">Reclaim candidates</div><div class="value" id="reclaim-count" data-value="{n}">{n}</div></div>
"#,
        over_class = if over > 0 { " bad" } else { "" },
        n = r.reclaim.len(),
    );
    for c in &r.costs {
        let cur = escape(&c.currency);
        let _ = write!(
            h,
            r#"<div class="card"><div class="label">Annual cost ({cur})</div><div class="value" data-currency="{cur}" data-kind="annual" data-value="{}">{} {cur}</div></div>
<div class="card warn"><div class="label">Paid but unused or reclaimable ({cur})</div><div class="value" data-currency="{cur}" data-kind="waste" data-value="{}">{} {cur}</div></div>
"#,
            c.annual_cost,
            money(c.annual_cost),
            c.unassigned_cost + c.reclaimable_cost,
            money(c.unassigned_cost + c.reclaimable_cost),
        );
    }
    let _ = write!(
        h,
        r#"<div class="card"><div class="label">Renewals within {} days</div><div class="value" data-value="{n}">{n}</div></div>"#,
        r.renewal_days,
        n = r.renewals.len()
    );
    h.push_str("</div></section>\n");
}

fn notes(h: &mut String, r: &Report) {
    for e in &r.errors {
        let _ = writeln!(
            h,
            r#"<p class="note error" role="alert"><b>{} could not be read:</b> {}</p>"#,
            escape(e.provider.as_str()),
            escape(&e.error)
        );
    }
    for w in &r.warnings {
        let _ = writeln!(h, r#"<p class="note">{}</p>"#, escape(w));
    }
    for p in r
        .providers
        .iter()
        .filter(|p| !p.changed_during_listing.is_empty())
    {
        let _ = writeln!(
            h,
            r#"<p class="note">{}: the vendor's data changed while it was listed; its figures mix two states.</p>"#,
            escape(p.provider.as_str())
        );
    }
}

fn vendors(h: &mut String, r: &Report) {
    h.push_str(
        r#"<section aria-labelledby="vendors"><h2 id="vendors">Vendors</h2>
<div class="scroll"><table id="vendor-totals"><thead><tr><th scope="col">Vendor</th><th scope="col" class="num">Products</th><th scope="col" class="num">Seats owned</th><th scope="col" class="num">Seats assigned</th><th scope="col" class="num">Users in directory</th><th scope="col" class="num">Annual cost</th></tr></thead><tbody>
"#,
    );
    for p in &r.providers {
        let mut owned = p.seats_total.to_string();
        if p.products_unlimited > 0 {
            let _ = write!(owned, " + {} unlimited", p.products_unlimited);
        }
        if p.products_total_unknown > 0 {
            let _ = write!(owned, " + {} unknown", p.products_total_unknown);
        }
        let cost = if p.costs.is_empty() {
            "—".to_string()
        } else {
            p.costs
                .iter()
                .map(|c| format!("{} {}", money(c.annual_cost), escape(&c.currency)))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let _ = writeln!(
            h,
            r#"<tr data-provider="{prov}"><th scope="row">{prov}</th><td class="num">{}</td><td class="num" data-value="{}">{}</td><td class="num" data-value="{}">{}</td><td class="num">{}</td><td class="num">{cost}{}</td></tr>"#,
            p.products,
            p.seats_total,
            owned,
            p.seats_assigned,
            p.seats_assigned,
            p.holders_in_directory
                .map_or("—".to_string(), |n| n.to_string()),
            if p.products_unpriced > 0 {
                format!(
                    r#"<br><span class="src">{} unpriced</span>"#,
                    p.products_unpriced
                )
            } else {
                String::new()
            },
            prov = escape(p.provider.as_str()),
        );
    }
    h.push_str("</tbody></table></div></section>\n");
}

/// A horizontal bar: assigned over total, the overflow in red and hatched when over-allocated.
fn utilization_bar(p: &ProductRow, index: usize) -> String {
    const W: f64 = 220.0;
    let label = match (p.total, p.unlimited) {
        (Some(t), _) => {
            let mut s = format!(
                "{} of {} seats assigned ({:.0} %)",
                p.assigned,
                t,
                p.utilization_pct.unwrap_or(0.0)
            );
            if let Some(over) = p.over_allocated_by {
                let _ = write!(s, ", over-allocated by {over}");
            }
            s
        }
        (None, true) => format!("{} seats assigned of an unlimited license", p.assigned),
        (None, false) => format!("{} seats assigned; total unknown", p.assigned),
    };
    let mut svg = format!(
        r##"<svg class="bar" width="{W}" height="16" viewBox="0 0 {W} 16" role="img" aria-label="{}"><title>{}</title><rect x="0" y="2" width="{W}" height="12" rx="3" fill="#e6e9ef"/>"##,
        escape(&label),
        escape(&label)
    );
    match p.total {
        Some(t) if t > 0 || p.assigned > 0 => {
            let scale = t.max(p.assigned) as f64;
            let used = W * (p.assigned.min(t) as f64) / scale;
            let color = if p.over_allocated_by.is_some() {
                "#b3261e"
            } else if p.utilization_pct.is_some_and(|u| u >= 90.0) {
                "#b26a00"
            } else {
                "#3b6fd8"
            };
            let _ = write!(
                svg,
                r#"<rect x="0" y="2" width="{used:.1}" height="12" rx="3" fill="{color}"/>"#
            );
            if p.assigned > t {
                let over = W - used;
                let _ = write!(
                    svg,
                    r##"<pattern id="over{index}" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="2" height="4" fill="#b3261e"/></pattern><rect x="{used:.1}" y="2" width="{over:.1}" height="12" fill="url(#over{index})" stroke="#b3261e"/><line x1="{used:.1}" y1="0" x2="{used:.1}" y2="16" stroke="#1d2430" stroke-width="1.5"/>"##
                );
            }
        }
        _ => {
            let _ = write!(
                svg,
                r##"<text x="6" y="12.5" font-size="10" fill="#5b6678">{}</text>"##,
                if p.unlimited {
                    "unlimited"
                } else {
                    "total unknown"
                }
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn utilization(h: &mut String, r: &Report) {
    h.push_str(
        r#"<section aria-labelledby="utilization"><h2 id="utilization">Utilization per product</h2>
<p class="legend" aria-hidden="true"><span><i style="background:#3b6fd8"></i>assigned</span><span><i style="background:#b26a00"></i>90 % or more</span><span><i style="background:#b3261e"></i>over-allocated (hatched: seats beyond the total)</span><span><i style="background:#e6e9ef"></i>free</span></p>
<div class="scroll"><table id="products"><thead><tr><th scope="col">Vendor</th><th scope="col">Product</th><th scope="col">Utilization</th><th scope="col" class="num">Assigned</th><th scope="col" class="num">Total</th><th scope="col" class="num">Free</th><th scope="col" class="num">Reclaimable</th><th scope="col">Source of figures</th></tr></thead><tbody>
"#,
    );
    for (i, p) in r.products.iter().enumerate() {
        let total = match (p.total, p.unlimited) {
            (Some(t), _) => t.to_string(),
            (None, true) => "unlimited".into(),
            (None, false) => "unknown".into(),
        };
        let mut tags = String::new();
        if let Some(over) = p.over_allocated_by {
            let _ = write!(tags, r#" <span class="tag over">over by {over}</span>"#);
        } else if p.utilization_pct.is_some_and(|u| u >= 90.0) {
            tags.push_str(r#" <span class="tag near">near capacity</span>"#);
        }
        if p.changed_during_listing {
            tags.push_str(r#" <span class="tag">changed during listing</span>"#);
        }
        let mut source = format!(
            "total: {}, assigned: {}",
            provenance(p.total_source),
            provenance(p.assigned_source)
        );
        if let Some(v) = p.vendor_total {
            let _ = write!(source, " (vendor says {v})");
        }
        let _ = writeln!(
            h,
            r#"<tr data-provider="{prov}" data-product="{id}"><td>{prov}</td><th scope="row">{name}<br><span class="src">{id}</span>{tags}</th><td>{bar}</td><td class="num" data-value="{a}">{a}</td><td class="num" data-value="{tv}">{total}</td><td class="num">{free}</td><td class="num" data-value="{rc}">{rc}</td><td class="src">{source}</td></tr>"#,
            prov = escape(p.provider.as_str()),
            id = escape(p.product_id.as_str()),
            name = escape(&p.name),
            bar = utilization_bar(p, i),
            a = p.assigned,
            tv = p.total.map_or(String::new(), |t| t.to_string()),
            free = p.available.map_or("—".to_string(), |n| n.to_string()),
            rc = p.reclaimable,
        );
    }
    h.push_str("</tbody></table></div></section>\n");
}

/// "Utilization over time": one small line chart per product (assigned, and the total dashed),
/// each with a title and a description naming first and last figures, then every point in one
/// table (the text alternative, also what prints and what a screen reader reads).
fn over_time(h: &mut String, trends: &[TrendPoint]) {
    type Key<'a> = (ProviderKind, &'a str);
    let mut series: BTreeMap<Key<'_>, Vec<&TrendPoint>> = BTreeMap::new();
    for t in trends {
        series
            .entry((t.provider, t.product_id.as_str()))
            .or_default()
            .push(t);
    }
    let mut moments: Vec<DateTime<Utc>> = trends.iter().map(|t| t.taken_at).collect();
    moments.sort();
    moments.dedup();
    let shown = moments.len().min(TREND_SNAPSHOTS);
    let first = moments[moments.len() - shown];
    let _ = write!(
        h,
        r#"<section aria-labelledby="over-time"><h2 id="over-time">Utilization over time</h2>
<p class="muted">Seats assigned per product in the {shown} newest stored snapshot{s} ({from} to {to}); the dashed line is the total. A gap is a snapshot in which the vendor could not be read.</p>
<p class="legend" aria-hidden="true"><span><i style="background:#3b6fd8"></i>assigned</span><span><i style="background:#5b6678"></i>total (dashed)</span><span><i style="background:#b3261e"></i>over the total</span></p>
<div class="trends">
"#,
        s = if shown == 1 { "" } else { "s" },
        from = first.format("%Y-%m-%d %H:%M"),
        to = moments[moments.len() - 1].format("%Y-%m-%d %H:%M"),
    );
    let index = |at: DateTime<Utc>| moments[moments.len() - shown..].binary_search(&at).ok();
    for (i, points) in series.values().enumerate() {
        let points: Vec<&TrendPoint> = points
            .iter()
            .copied()
            .filter(|p| p.taken_at >= first)
            .collect();
        let Some(last) = points.last() else { continue };
        let _ = writeln!(
            h,
            r#"<figure data-provider="{prov}" data-product="{id}"><figcaption>{name} <span class="src">{prov} · {id}</span></figcaption>{svg}</figure>"#,
            prov = escape(last.provider.as_str()),
            id = escape(&last.product_id),
            name = escape(&last.name),
            svg = trend_chart(&points, shown, &index, i),
        );
    }
    // The text alternative: a product per row, a snapshot per column, "assigned / total".
    let columns = &moments[moments.len() - shown..];
    h.push_str(
        r#"</div>
<div class="scroll"><table id="trend-table"><caption>Utilization over time, as a table: seats assigned / total per snapshot</caption><thead><tr><th scope="col">Vendor</th><th scope="col">Product</th>"#,
    );
    for at in columns {
        let _ = write!(
            h,
            r#"<th scope="col" class="num">{}</th>"#,
            at.format("%Y-%m-%d %H:%M")
        );
    }
    h.push_str("</tr></thead><tbody>\n");
    for points in series.values() {
        let last = points[points.len() - 1];
        let _ = write!(
            h,
            r#"<tr data-provider="{prov}" data-product="{id}"><td>{prov}</td><th scope="row">{name}</th>"#,
            prov = escape(last.provider.as_str()),
            id = escape(&last.product_id),
            name = escape(&last.name),
        );
        for at in columns {
            match points.iter().find(|p| p.taken_at == *at) {
                None => h.push_str(r#"<td class="num muted">—</td>"#),
                Some(p) => {
                    let _ = write!(
                        h,
                        r#"<td class="num" data-taken="{taken}" data-value="{av}">{a} / {t}</td>"#,
                        taken = p
                            .taken_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                        av = p.assigned.map_or(String::new(), |a| a.to_string()),
                        a = p
                            .assigned
                            .map_or_else(|| "unknown (vendor not read)".into(), |a| a.to_string()),
                        t = p.total.map_or_else(|| "—".into(), |t| t.to_string()),
                    );
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div></section>\n");
}

/// One product's line chart: x = the snapshot's place among the `slots` newest, y = seats.
fn trend_chart(
    points: &[&TrendPoint],
    slots: usize,
    index: &dyn Fn(DateTime<Utc>) -> Option<usize>,
    n: usize,
) -> String {
    const W: f64 = 320.0;
    const H: f64 = 110.0;
    const LEFT: f64 = 34.0;
    const TOP: f64 = 8.0;
    const BOTTOM: f64 = 20.0;
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - TOP - BOTTOM;
    let max = points
        .iter()
        .flat_map(|p| [p.assigned, p.total])
        .flatten()
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |at: DateTime<Utc>| {
        let i = index(at).unwrap_or(0);
        if slots <= 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (slots - 1) as f64
        }
    };
    let y = |v: u64| TOP + plot_h * (1.0 - v as f64 / max as f64);
    let known: Vec<&&TrendPoint> = points.iter().filter(|p| p.assigned.is_some()).collect();
    let describe = |p: &TrendPoint| {
        let assigned = p
            .assigned
            .map_or_else(|| "unknown".to_string(), |a| a.to_string());
        match p.total {
            Some(t) => format!("{assigned} of {t}"),
            None => format!("{assigned} (total unknown or unlimited)"),
        }
    };
    let (first, last) = (points[0], points[points.len() - 1]);
    let desc = if points.len() == 1 {
        format!(
            "One snapshot, {}: {} seats assigned.",
            first.taken_at.format("%Y-%m-%d %H:%M"),
            describe(first)
        )
    } else {
        format!(
            "{} snapshots. Seats assigned: {} on {}, {} on {}; lowest {}, highest {}.",
            points.len(),
            describe(first),
            first.taken_at.format("%Y-%m-%d %H:%M"),
            describe(last),
            last.taken_at.format("%Y-%m-%d %H:%M"),
            known
                .iter()
                .filter_map(|p| p.assigned)
                .min()
                .map_or("unknown".into(), |v| v.to_string()),
            known
                .iter()
                .filter_map(|p| p.assigned)
                .max()
                .map_or("unknown".into(), |v| v.to_string()),
        )
    };
    let mut svg = format!(
        r##"<svg class="trend" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-labelledby="trend{n}-t trend{n}-d"><title id="trend{n}-t">Seats assigned over time: {name}</title><desc id="trend{n}-d">{desc}</desc>"##,
        name = escape(&last.name),
        desc = escape(&desc),
    );
    // Axes: 0 and the maximum, and the first and last snapshot's date.
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#d9dee7"/><line x1="{LEFT}" y1="{TOP}" x2="{r}" y2="{TOP}" stroke="#eef1f6"/><text x="{lx}" y="{ty}" font-size="10" fill="#5b6678" text-anchor="end">{max}</text><text x="{lx}" y="{by}" font-size="10" fill="#5b6678" text-anchor="end">0</text>"##,
        b = TOP + plot_h,
        r = LEFT + plot_w,
        lx = LEFT - 4.0,
        ty = TOP + 4.0,
        by = TOP + plot_h + 3.0,
    );
    let date_y = H - 5.0;
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="{date_y}" font-size="10" fill="#5b6678">{}</text>"##,
        first.taken_at.format("%m-%d %H:%M")
    );
    if points.len() > 1 {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{date_y}" font-size="10" fill="#5b6678" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            last.taken_at.format("%m-%d %H:%M")
        );
    }
    // Lines, broken where a figure is unknown.
    let line = |value: &dyn Fn(&TrendPoint) -> Option<u64>, style: &str| -> String {
        let mut out = String::new();
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, out: &mut String| {
            if run.len() > 1 {
                let _ = write!(
                    out,
                    r#"<polyline points="{}" fill="none" {style}/>"#,
                    run.join(" ")
                );
            }
            run.clear();
        };
        for p in points {
            match value(p) {
                Some(v) => run.push(format!("{:.1},{:.1}", x(p.taken_at), y(v))),
                None => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
        out
    };
    svg.push_str(&line(
        &|p| p.total,
        r##"stroke="#5b6678" stroke-width="1.5" stroke-dasharray="4 3""##,
    ));
    svg.push_str(&line(
        &|p| p.assigned,
        r##"stroke="#3b6fd8" stroke-width="2""##,
    ));
    for p in points {
        match p.assigned {
            Some(a) => {
                let over = p.total.is_some_and(|t| a > t);
                let _ = write!(
                    svg,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="{}" fill="{}"/>"##,
                    x(p.taken_at),
                    y(a),
                    if over { 3.5 } else { 2.5 },
                    if over { "#b3261e" } else { "#3b6fd8" }
                );
            }
            None => {
                let (cx, cy) = (x(p.taken_at), TOP + plot_h - 6.0);
                let _ = write!(
                    svg,
                    r##"<text x="{cx:.1}" y="{cy:.1}" font-size="11" fill="#b3261e" text-anchor="middle">?</text>"##
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// One stacked bar per currency: seats in use, unassigned, reclaimable (share of annual cost).
fn waste_chart(c: &CostTotals) -> String {
    const W: f64 = 520.0;
    let total = c.annual_cost;
    let share = |part: Decimal| -> f64 {
        if total.is_zero() {
            0.0
        } else {
            let ratio = (part / total).min(Decimal::ONE);
            ratio.to_string().parse::<f64>().unwrap_or(0.0) // display only, never summed
        }
    };
    let unassigned = share(c.unassigned_cost);
    let reclaimable = share(c.reclaimable_cost).min(1.0 - unassigned);
    let used = (1.0 - unassigned - reclaimable).max(0.0);
    let label = format!(
        "{}: annual cost {} {}, of which {} unassigned and {} held by reclaim candidates",
        c.currency,
        money(c.annual_cost),
        c.currency,
        money(c.unassigned_cost),
        money(c.reclaimable_cost)
    );
    let x1 = W * used;
    let x2 = x1 + W * reclaimable;
    format!(
        r##"<svg class="bar" width="{W}" height="22" viewBox="0 0 {W} 22" role="img" aria-label="{l}"><title>{l}</title><rect x="0" y="3" width="{W}" height="16" rx="3" fill="#e6e9ef"/><rect x="0" y="3" width="{x1:.1}" height="16" fill="#3b6fd8"/><rect x="{x1:.1}" y="3" width="{rw:.1}" height="16" fill="#b26a00"/><rect x="{x2:.1}" y="3" width="{uw:.1}" height="16" fill="#b3261e"/></svg>"##,
        l = escape(&label),
        rw = W * reclaimable,
        uw = W * unassigned,
    )
}

fn costs(h: &mut String, r: &Report) {
    h.push_str(r#"<section aria-labelledby="costs"><h2 id="costs">Cost and waste</h2>"#);
    if r.costs.is_empty() {
        h.push_str(r#"<p class="muted">No product has a price: add <code>[[contracts]]</code> with <code>price_per_seat</code>, <code>currency</code> and <code>period</code> to the configuration.</p></section>"#);
        return;
    }
    h.push_str(r#"<p class="legend" aria-hidden="true"><span><i style="background:#3b6fd8"></i>seats in use</span><span><i style="background:#b26a00"></i>held by reclaim candidates</span><span><i style="background:#b3261e"></i>paid for, assigned to nobody</span></p>"#);
    for c in &r.costs {
        let _ = writeln!(
            h,
            r#"<figure><figcaption class="muted">{cur}: {} a year; {} unassigned, {} held by reclaim candidates</figcaption>{}</figure>"#,
            money(c.annual_cost),
            money(c.unassigned_cost),
            money(c.reclaimable_cost),
            waste_chart(c),
            cur = escape(&c.currency),
        );
    }
    h.push_str(
        r#"<div class="scroll"><table id="cost-table"><caption>Annual figures from the configured contracts (provenance: configured); products without a price are in no sum.</caption><thead><tr><th scope="col">Product</th><th scope="col">Currency</th><th scope="col" class="num">Price per seat</th><th scope="col" class="num">Seats</th><th scope="col" class="num">Annual cost</th><th scope="col" class="num">Unassigned</th><th scope="col" class="num">Unassigned cost</th><th scope="col" class="num">Reclaimable</th><th scope="col" class="num">Reclaimable cost</th></tr></thead><tbody>
"#,
    );
    let mut by_currency: BTreeMap<&str, Vec<&ProductRow>> = BTreeMap::new();
    for p in &r.products {
        if let Some(c) = &p.cost {
            by_currency.entry(c.currency.as_str()).or_default().push(p);
        }
    }
    for (currency, rows) in &by_currency {
        for p in rows {
            let c = p.cost.as_ref().expect("grouped by cost");
            let period = match c.period {
                crate::Period::Month => "month",
                crate::Period::Year => "year",
            };
            let _ = writeln!(
                h,
                r#"<tr data-provider="{prov}" data-product="{id}"><th scope="row">{name}<br><span class="src">{prov}</span></th><td>{cur}</td><td class="num" data-value="{pv}">{price} / {period}</td><td class="num">{seats}</td>{annual}<td class="num">{un}</td>{unc}<td class="num">{rs}</td>{rc}</tr>"#,
                prov = escape(p.provider.as_str()),
                id = escape(p.product_id.as_str()),
                name = escape(&p.name),
                pv = c.price_per_seat,
                price = money(c.price_per_seat),
                cur = escape(currency),
                seats = p.total.map_or("—".to_string(), |t| t.to_string()),
                annual = money_cell(c.annual_cost, ""),
                un = c
                    .unassigned_seats
                    .map_or("—".to_string(), |n| n.to_string()),
                unc = money_cell(c.unassigned_cost, ""),
                rs = c.reclaimable_seats,
                rc = money_cell(Some(c.reclaimable_cost), ""),
            );
        }
    }
    h.push_str("</tbody><tfoot>\n");
    for c in &r.costs {
        let _ = writeln!(
            h,
            r#"<tr data-currency="{cur}"><th scope="row">Total {cur} ({} products)</th><td>{cur}</td><td></td><td></td>{}<td></td>{}<td></td>{}</tr>"#,
            c.products,
            money_cell(Some(c.annual_cost), ""),
            money_cell(Some(c.unassigned_cost), ""),
            money_cell(Some(c.reclaimable_cost), ""),
            cur = escape(&c.currency),
        );
    }
    h.push_str("</tfoot></table></div></section>\n");
}

fn renewals(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        r#"<section aria-labelledby="renewals"><h2 id="renewals">Renewals within {} days</h2>"#,
        r.renewal_days
    );
    if r.renewals.is_empty() {
        h.push_str(r#"<p class="muted">None.</p></section>"#);
        return;
    }
    h.push_str(r#"<div class="scroll"><table id="renewal-table"><thead><tr><th scope="col">Renews</th><th scope="col" class="num">In days</th><th scope="col">Vendor</th><th scope="col">Product</th><th scope="col" class="num">Seats</th><th scope="col" class="num">Annual cost</th><th scope="col">Notes</th></tr></thead><tbody>
"#);
    for n in &r.renewals {
        let currency = n.currency.as_deref().unwrap_or("");
        let _ = writeln!(
            h,
            r#"<tr><td><time datetime="{d}">{d}</time></td><td class="num">{}</td><td>{}</td><th scope="row">{}</th><td class="num">{}</td>{}<td>{}</td></tr>"#,
            n.days_left,
            escape(n.provider.as_str()),
            escape(&n.product_name),
            n.seats.map_or("—".to_string(), |s| s.to_string()),
            money_cell(n.annual_cost, currency),
            escape(n.notes.as_deref().unwrap_or("")),
            d = n.date,
        );
    }
    h.push_str("</tbody></table></div></section>\n");
}

fn reclaim(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        r#"<section aria-labelledby="reclaim"><h2 id="reclaim">Seats that could be reclaimed ({})</h2>
<p class="muted">Inactive or retired holders, holders the vendor's directory no longer knows, holders with no sign-in for {} days or more (where the vendor reports sign-ins), and the most recent holders of over-allocated products.</p>"#,
        r.reclaim.len(),
        r.inactive_days
    );
    if r.reclaim.is_empty() {
        h.push_str(r#"<p class="muted">None.</p></section>"#);
        return;
    }
    h.push_str(r#"<div class="scroll"><table id="reclaim-table"><thead><tr><th scope="col">Vendor</th><th scope="col">Product</th><th scope="col">Holder</th><th scope="col">Name / email</th><th scope="col">Reason</th><th scope="col">Last sign-in</th></tr></thead><tbody>
"#);
    for c in &r.reclaim {
        let who = match (&c.holder_name, &c.email) {
            (Some(n), Some(e)) => {
                format!("{}<br><span class=\"src\">{}</span>", escape(n), escape(e))
            }
            (Some(n), None) => escape(n),
            (None, Some(e)) => escape(e),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            h,
            r#"<tr data-reason="{key}" data-holder="{hid}"><td>{}</td><td>{}</td><td><code>{hid}</code></td><td>{who}</td><td>{}</td><td>{}</td></tr>"#,
            escape(c.provider.as_str()),
            escape(&c.product_name),
            escape(&reason_text(c.reason, c.idle_days)),
            c.last_login.map_or("—".to_string(), |d| format!(
                r#"<time datetime="{}">{}</time>"#,
                d.to_rfc3339(),
                d.format("%Y-%m-%d")
            )),
            key = reason_key(c.reason),
            hid = escape(c.holder.as_str()),
        );
    }
    h.push_str("</tbody></table></div></section>\n");
}

fn unmatched(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        r#"<section aria-labelledby="unmatched"><h2 id="unmatched">Holders without a usable email ({})</h2>
<p class="muted">{} people matched across vendors by email; these holders could not be matched and are never guessed. {} devices hold licenses.</p>"#,
        r.unmatched.len(),
        r.people.len(),
        r.devices.len()
    );
    if r.unmatched.is_empty() {
        h.push_str("</section>\n");
        return;
    }
    h.push_str(r#"<div class="scroll"><table id="unmatched-table"><thead><tr><th scope="col">Vendor</th><th scope="col">Holder</th><th scope="col">Name</th><th scope="col">Products</th></tr></thead><tbody>
"#);
    for u in &r.unmatched {
        let _ = writeln!(
            h,
            r#"<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>"#,
            escape(u.provider.as_str()),
            escape(&u.holder_id),
            escape(u.display_name.as_deref().unwrap_or("")),
            escape(
                &u.products
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    h.push_str("</tbody></table></div></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportOptions;
    use crate::{Contract, Period};
    use licensekit_core::{
        HolderId, InMemoryProvider, LicenseProviderExt, MemoryConfig, MemoryProduct, MemoryUser,
        ProductId,
    };

    const HOSTILE: &str =
        r#"<script>alert('x')</script><img src=x onerror="fetch('//evil')">&amp;"#;

    #[test]
    fn money_is_grouped_and_exact() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(money(d("186660")), "186,660.00");
        assert_eq!(money(d("1234567.891")), "1,234,567.891");
        assert_eq!(money(d("999.5")), "999.50");
        assert_eq!(money(d("-1000")), "-1,000.00");
        assert_eq!(money(d("0")), "0.00");
    }

    #[test]
    fn escape_covers_text_and_attributes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    /// Every vendor- and config-supplied string is escaped: a product, user, email and note
    /// made of markup appear as text, and the page holds no script and fetches nothing.
    #[tokio::test]
    async fn hostile_vendor_strings_are_escaped() {
        let p = InMemoryProvider::new(MemoryConfig {
            products: vec![MemoryProduct {
                id: format!("id-{HOSTILE}"),
                name: HOSTILE.into(),
                seats: Some(1),
                device_assignable: true,
            }],
            users: vec![
                MemoryUser {
                    id: format!("u1{HOSTILE}"),
                    email: Some(format!("{HOSTILE}@x.io")),
                    name: Some(HOSTILE.into()),
                    active: true,
                    last_login: None,
                },
                MemoryUser {
                    id: "u2".into(),
                    email: None,
                    name: Some(HOSTILE.into()),
                    active: true,
                    last_login: None,
                },
            ],
            ..MemoryConfig::default()
        })
        .unwrap();
        let product = ProductId::new(format!("id-{HOSTILE}"));
        p.assign(&product, &[HolderId::user(format!("u1{HOSTILE}"))])
            .await
            .unwrap();
        p.set_user_active(&format!("u1{HOSTILE}"), false).unwrap();
        let options = ReportOptions {
            contracts: vec![
                Contract::new(crate::InMemoryProvider::KIND, format!("id-{HOSTILE}"))
                    .with_price("3".parse().unwrap(), "EUR", Period::Month)
                    .with_renewal(chrono::Utc::now().date_naive())
                    .with_notes(HOSTILE),
                Contract::new(
                    crate::InMemoryProvider::KIND,
                    HOSTILE.to_string() + "missing",
                ),
            ],
            ..ReportOptions::default()
        };
        let report = Report::collect(&[&p], &options, &|_, _| {}).await;
        assert_eq!(report.reclaim.len(), 1);
        assert_eq!(report.renewals.len(), 1);
        assert_eq!(report.warnings.len(), 1);
        let html = render(&report);
        let lower = html.to_lowercase();
        for forbidden in ["<script", "<img", "<link", "<iframe", "@import", "url(http"] {
            assert!(!lower.contains(forbidden), "{forbidden} in the page");
        }
        let escaped = escape(HOSTILE);
        assert!(escaped.contains("&lt;script&gt;"));
        // Name (products, reclaim, renewal), note, email, warning: each appears escaped.
        assert!(html.matches(&escaped).count() >= 5, "{html}");
        assert!(html.contains(&format!("{}@x.io", escaped)));
        assert!(html.contains(CONTENT_SECURITY_POLICY));
    }

    fn point(
        product: &str,
        name: &str,
        hour: u32,
        assigned: Option<u64>,
        total: u64,
    ) -> TrendPoint {
        use chrono::TimeZone;
        TrendPoint {
            provider: crate::InMemoryProvider::KIND,
            product_id: product.into(),
            name: name.into(),
            taken_at: chrono::Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
                + chrono::Duration::hours(i64::from(hour)),
            assigned,
            total: Some(total),
        }
    }

    /// Utilization over time: one inline SVG per product with a title and a description, broken
    /// where a snapshot could not read the vendor, over-allocation marked, and every point in a
    /// table; a hostile product name stays text; no trends, no section.
    #[tokio::test]
    async fn utilization_over_time_is_svg_with_a_text_alternative() {
        let p = InMemoryProvider::new(MemoryConfig::default()).unwrap();
        let report = Report::collect(&[&p], &ReportOptions::default(), &|_, _| {}).await;
        assert!(!render(&report).contains("over-time"));

        let mut trends = vec![
            point("app", "App", 0, Some(10), 20),
            point("app", "App", 1, Some(12), 20),
            point("app", "App", 2, None, 20),
            point("app", "App", 3, Some(25), 20),
            point("evil", HOSTILE, 3, Some(1), 1),
        ];
        let html = render_with_history(&report, &trends);
        assert!(html.contains(r#"<h2 id="over-time">Utilization over time</h2>"#));
        assert_eq!(html.matches("<figure").count(), 2);
        let app = &html[html
            .find(r#"<figure data-provider="memory" data-product="app">"#)
            .unwrap()..];
        let app = &app[..app.find("</figure>").unwrap()];
        assert!(
            app.contains(r#"role="img" aria-labelledby="trend0-t trend0-d""#),
            "{app}"
        );
        assert!(
            app.contains("<desc id=\"trend0-d\">4 snapshots. Seats assigned: 10 of 20 on 2026-11-01 00:00, 25 of 20 on 2026-11-01 03:00; lowest 10, highest 25.</desc>"),
            "{app}"
        );
        // The assigned line stops at the unread snapshot (one segment of two points), which
        // gets a "?" instead; the point over the total is red.
        assert_eq!(
            app.matches(r##"stroke="#3b6fd8" stroke-width="2""##)
                .count(),
            1
        );
        assert!(app.contains(">?</text>"));
        assert_eq!(app.matches(r##"r="3.5" fill="#b3261e""##).count(), 1);
        // The table: every point, the unread one as unknown.
        let table = &html[html.find(r#"id="trend-table""#).unwrap()..];
        assert_eq!(table.matches(r#"<tr data-provider="memory""#).count(), 2);
        assert_eq!(table.matches("<td class=\"num\" data-taken=").count(), 5);
        assert!(
            table.contains(
                r#"<th scope="row">App</th><td class="num" data-taken="2026-11-01T00:00:00.000000Z" data-value="10">10 / 20</td>"#
            ),
            "{table}"
        );
        assert!(
            table.contains(
                r#"data-taken="2026-11-01T03:00:00.000000Z" data-value="25">25 / 20</td>"#
            )
        );
        // The hostile product is in the last snapshot only.
        assert_eq!(table.matches(r#"<td class="num muted">—</td>"#).count(), 3);
        assert!(table.contains("unknown (vendor not read)"));
        assert!(!html.to_lowercase().contains("<script"));
        assert!(html.contains(&escape(HOSTILE)));

        // Only the newest TREND_SNAPSHOTS snapshots are charted.
        trends = (0..30)
            .map(|h| point("app", "App", h, Some(u64::from(h)), 40))
            .collect();
        let html = render_with_history(&report, &trends);
        let table = &html[html.find(r#"id="trend-table""#).unwrap()..];
        assert_eq!(
            table.matches("<td class=\"num\" data-taken=").count(),
            TREND_SNAPSHOTS
        );
        assert!(html.contains("in the 24 newest stored snapshots"));
    }
}
