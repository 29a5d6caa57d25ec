//! A function's Monitor: calls, errors, cold starts and duration percentiles over the last
//! hour, day or week, drawn as SVG from the figures the server keeps in its database.

use crate::api::function_metrics;
use crate::components::{error_text, use_ticker};
use crate::model::{MetricsBucket, MetricsView};
use leptos::prelude::*;
use std::time::Duration;

const WINDOWS: [(&str, &str); 3] = [("1h", "Last hour"), ("24h", "Last day"), ("7d", "Last week")];
/// The charts' drawing box; the browser scales it to the card's width.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;

#[component]
pub fn Monitor(org: String, name: String) -> impl IntoView {
    let window = RwSignal::new("1h");
    let tick = use_ticker(Duration::from_secs(5));
    let figures = Resource::new(move || (org.clone(), name.clone(), window.get(), tick.get()), |(o, n, w, _)| function_metrics(o, n, w.to_string()));
    view! {
        <section class="card" aria-label="Monitor">
            <div class="section-head">
                <h2>"Monitor"</h2>
                <div class="segmented" role="group" aria-label="Window">
                    {WINDOWS.map(|(w, label)| view! {
                        <button type="button" data-window=w title=label aria-pressed=move || (window.get() == w).to_string()
                            on:click=move |_| window.set(w)>{w}</button>
                    })}
                </div>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || figures.get().map(|r| match r {
                    Ok(m) => view! { <Figures m /> }.into_any(),
                    Err(e) => view! { <p class="alert error">{error_text(&e)}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Figures(m: MetricsView) -> impl IntoView {
    let t = &m.total;
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.1} ms")).unwrap_or_else(|| "–".into());
    let rate = if t.calls > 0 { format!("{:.1} %", 100.0 * t.errors as f64 / t.calls as f64) } else { "–".into() };
    let stats = [
        ("calls", t.calls.to_string()),
        ("errors", format!("{} ({rate})", t.errors)),
        ("cold starts", t.cold_starts.to_string()),
        ("p50", ms(t.p50_ms)),
        ("p95", ms(t.p95_ms)),
        ("p99", ms(t.p99_ms)),
    ];
    let span = format!("{} buckets of {}", m.buckets.len(), bucket_label(m.bucket_ms));
    view! {
        <div class="stats compact" data-testid="monitor-totals">
            {stats.map(|(label, value)| view! { <div class="stat" data-stat=label><span class="value">{value}</span><span class="label">{label}</span></div> })}
        </div>
        <figure class="chart" data-testid="chart-calls">
            <figcaption>"Calls " <span class="key calls">"■"</span> " and errors " <span class="key errors">"■"</span> " (" {span} ")"</figcaption>
            {bars(&m.buckets)}
        </figure>
        <figure class="chart" data-testid="chart-duration">
            <figcaption>"Duration: p50 " <span class="key p50">"—"</span> " p95 " <span class="key p95">"—"</span> " p99 " <span class="key p99">"—"</span></figcaption>
            {lines(&m.buckets)}
        </figure>
    }
}

fn bucket_label(ms: i64) -> String {
    match ms / 60_000 {
        m if m % 60 == 0 => format!("{} h", m / 60),
        m => format!("{m} min"),
    }
}

/// Calls per bucket as bars, with the bucket's errors over them.
fn bars(buckets: &[MetricsBucket]) -> impl IntoView {
    let most = buckets.iter().map(|b| b.calls).max().unwrap_or(0).max(1) as f64;
    let width = WIDTH / buckets.len().max(1) as f64;
    let bar = |i: usize, count: u64, class: &'static str| {
        let h = HEIGHT * count as f64 / most;
        (count > 0).then(|| view! { <rect class=class x=format!("{:.2}", i as f64 * width) y=format!("{:.2}", HEIGHT - h) width=format!("{:.2}", (width - 1.0).max(0.5)) height=format!("{h:.2}") /> })
    };
    let rects: Vec<_> = buckets.iter().enumerate().flat_map(|(i, b)| [bar(i, b.calls, "calls"), bar(i, b.errors, "errors")]).flatten().collect();
    view! {
        <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="none" role="img" aria-label=format!("calls per bucket, at most {most}")>
            {rects}
        </svg>
        <p class="chart-scale">{format!("peak {most} calls")}</p>
    }
}

/// The duration percentiles per bucket as lines (buckets without calls leave a gap).
fn lines(buckets: &[MetricsBucket]) -> impl IntoView {
    let most = buckets.iter().filter_map(|b| b.p99_ms).fold(0.0_f64, f64::max).max(1.0);
    let step = WIDTH / buckets.len().max(1) as f64;
    let path = |pick: fn(&MetricsBucket) -> Option<f64>| {
        let mut d = String::new();
        let mut pen_down = false;
        for (i, b) in buckets.iter().enumerate() {
            match pick(b) {
                Some(v) => {
                    let (x, y) = (i as f64 * step + step / 2.0, HEIGHT - HEIGHT * v / most);
                    d.push_str(&format!("{}{x:.2},{y:.2} ", if pen_down { "L" } else { "M" }));
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        d
    };
    view! {
        <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="none" role="img" aria-label=format!("duration percentiles, up to {most:.1} ms")>
            <path class="p99" d=path(|b| b.p99_ms) />
            <path class="p95" d=path(|b| b.p95_ms) />
            <path class="p50" d=path(|b| b.p50_ms) />
        </svg>
        <p class="chart-scale">{format!("top {most:.1} ms")}</p>
    }
}
