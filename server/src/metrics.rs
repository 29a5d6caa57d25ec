//! Counters and histograms since start, served as Prometheus text at `/metrics` and summed
//! per tenant for the provider dashboard.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the duration buckets, in seconds.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// The calls of one function.
#[derive(Default)]
struct FunctionCalls {
    /// (status, cold) → calls
    counts: BTreeMap<(u16, bool), u64>,
    durations: Histogram,
}

#[derive(Default)]
struct Inner {
    /// tenant → function → its calls: nested so that counting a call finds its entry by the
    /// names it has, without making owned keys on every call.
    calls: BTreeMap<String, BTreeMap<String, FunctionCalls>>,
    /// (language, ok) → build durations
    builds: BTreeMap<(String, bool), Histogram>,
    /// (tenant, function, allowed) → outbound connections and their bytes
    egress: BTreeMap<(String, String, bool), EgressCounts>,
}

#[derive(Default)]
struct EgressCounts {
    connections: u64,
    sent: u64,
    received: u64,
}

/// The value under `key`, made on first use: the lookup borrows `key`, so counting a call
/// makes no owned key.
fn entry<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

impl Inner {
    fn functions(&self) -> impl Iterator<Item = (&str, &str, &FunctionCalls)> {
        self.calls.iter().flat_map(|(tenant, functions)| functions.iter().map(move |(function, calls)| (tenant.as_str(), function.as_str(), calls)))
    }
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// A gauge read at render time: containers of a function.
pub struct PoolGauge {
    pub tenant: String,
    pub function: String,
    pub busy: usize,
    pub idle: usize,
    /// Created ahead of the next cold start, not started.
    pub spare: usize,
    /// Started ahead of the next cold start and paused (pre-started).
    pub prestarted: usize,
    /// The memory limit of the pre-started ones, which they hold.
    pub prestarted_mb: i64,
    pub waiting: usize,
}

/// What the provider dashboard shows per tenant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantFigures {
    pub calls: u64,
    pub errors: u64,
    pub cold_starts: u64,
    pub mean_ms: f64,
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub fn record_call(&self, tenant: &str, function: &str, status: u16, cold: bool, duration: Duration) {
        let mut inner = self.inner.lock().unwrap();
        let calls = entry(entry(&mut inner.calls, tenant), function);
        *calls.counts.entry((status, cold)).or_default() += 1;
        calls.durations.observe(duration.as_secs_f64());
    }

    pub fn record_build(&self, language: &str, ok: bool, duration: Duration) {
        let mut inner = self.inner.lock().unwrap();
        inner.builds.entry((language.into(), ok)).or_default().observe(duration.as_secs_f64());
    }

    /// An outbound connection, refused or ended, with the bytes it carried.
    pub fn record_egress(&self, tenant: &str, function: &str, allowed: bool, sent: u64, received: u64) {
        let mut inner = self.inner.lock().unwrap();
        let counts = inner.egress.entry((tenant.into(), function.into(), allowed)).or_default();
        counts.connections += 1;
        counts.sent += sent;
        counts.received += received;
    }

    pub fn tenant_figures(&self) -> BTreeMap<String, TenantFigures> {
        let inner = self.inner.lock().unwrap();
        let mut out: BTreeMap<String, TenantFigures> = BTreeMap::new();
        for (tenant, _, calls) in inner.functions() {
            let f = out.entry(tenant.to_string()).or_default();
            for ((status, cold), n) in &calls.counts {
                f.calls += n;
                if *status >= 500 {
                    f.errors += n;
                }
                if *cold {
                    f.cold_starts += n;
                }
            }
            f.mean_ms += calls.durations.sum * 1000.0;
        }
        for f in out.values_mut() {
            if f.calls > 0 {
                f.mean_ms /= f.calls as f64;
            }
        }
        out
    }

    /// The Prometheus text exposition of everything, with the pools' current sizes.
    pub fn render(&self, pools: &[PoolGauge]) -> String {
        let inner = self.inner.lock().unwrap();
        let mut out = String::new();
        out.push_str("# HELP vcdfaas_calls_total Function calls by tenant, function, status and start.\n");
        out.push_str("# TYPE vcdfaas_calls_total counter\n");
        for (tenant, function, calls) in inner.functions() {
            for ((status, cold), n) in &calls.counts {
                let start = if *cold { "cold" } else { "warm" };
                let _ = writeln!(
                    out,
                    "vcdfaas_calls_total{{tenant=\"{}\",function=\"{}\",status=\"{status}\",start=\"{start}\"}} {n}",
                    escape(tenant),
                    escape(function)
                );
            }
        }
        out.push_str("# HELP vcdfaas_cold_starts_total Calls that started a container.\n");
        out.push_str("# TYPE vcdfaas_cold_starts_total counter\n");
        for (tenant, function, calls) in inner.functions() {
            let cold: u64 = calls.counts.iter().filter(|((_, cold), _)| *cold).map(|(_, n)| n).sum();
            if cold > 0 {
                let _ = writeln!(out, "vcdfaas_cold_starts_total{{tenant=\"{}\",function=\"{}\"}} {cold}", escape(tenant), escape(function));
            }
        }
        out.push_str("# HELP vcdfaas_call_duration_seconds Call durations seen by the gateway.\n");
        out.push_str("# TYPE vcdfaas_call_duration_seconds histogram\n");
        for (tenant, function, calls) in inner.functions() {
            let labels = format!("tenant=\"{}\",function=\"{}\"", escape(tenant), escape(function));
            calls.durations.render(&mut out, "vcdfaas_call_duration_seconds", &labels);
        }
        out.push_str("# HELP vcdfaas_build_duration_seconds Image build durations.\n");
        out.push_str("# TYPE vcdfaas_build_duration_seconds histogram\n");
        for ((language, ok), h) in &inner.builds {
            let labels = format!("language=\"{}\",result=\"{}\"", escape(language), if *ok { "ready" } else { "failed" });
            h.render(&mut out, "vcdfaas_build_duration_seconds", &labels);
        }
        out.push_str("# HELP vcdfaas_egress_connections_total Outbound connections functions asked for, allowed or refused.\n");
        out.push_str("# TYPE vcdfaas_egress_connections_total counter\n");
        for ((tenant, function, allowed), counts) in &inner.egress {
            let result = if *allowed { "allowed" } else { "refused" };
            let labels = format!("tenant=\"{}\",function=\"{}\"", escape(tenant), escape(function));
            let _ = writeln!(out, "vcdfaas_egress_connections_total{{{labels},result=\"{result}\"}} {}", counts.connections);
        }
        out.push_str("# HELP vcdfaas_egress_bytes_total Bytes of ended outbound connections, from the function (sent) and to it.\n");
        out.push_str("# TYPE vcdfaas_egress_bytes_total counter\n");
        for ((tenant, function, _), counts) in inner.egress.iter().filter(|((_, _, allowed), _)| *allowed) {
            let labels = format!("tenant=\"{}\",function=\"{}\"", escape(tenant), escape(function));
            let _ = writeln!(out, "vcdfaas_egress_bytes_total{{{labels},direction=\"sent\"}} {}", counts.sent);
            let _ = writeln!(out, "vcdfaas_egress_bytes_total{{{labels},direction=\"received\"}} {}", counts.received);
        }
        out.push_str("# HELP vcdfaas_pool_containers Containers of a function by state.\n");
        out.push_str("# TYPE vcdfaas_pool_containers gauge\n");
        for p in pools {
            let labels = format!("tenant=\"{}\",function=\"{}\"", escape(&p.tenant), escape(&p.function));
            let _ = writeln!(out, "vcdfaas_pool_containers{{{labels},state=\"busy\"}} {}", p.busy);
            let _ = writeln!(out, "vcdfaas_pool_containers{{{labels},state=\"idle\"}} {}", p.idle);
            let _ = writeln!(out, "vcdfaas_pool_containers{{{labels},state=\"spare\"}} {}", p.spare);
            let _ = writeln!(out, "vcdfaas_pool_containers{{{labels},state=\"prestarted\"}} {}", p.prestarted);
        }
        out.push_str("# HELP vcdfaas_queue_depth Calls waiting for a container of a function.\n");
        out.push_str("# TYPE vcdfaas_queue_depth gauge\n");
        for p in pools {
            let _ = writeln!(out, "vcdfaas_queue_depth{{tenant=\"{}\",function=\"{}\"}} {}", escape(&p.tenant), escape(&p.function), p.waiting);
        }
        out.push_str("# HELP vcdfaas_pool_prestarted_memory_mb Memory limit held by a function's pre-started (paused) spare.\n");
        out.push_str("# TYPE vcdfaas_pool_prestarted_memory_mb gauge\n");
        for p in pools {
            let _ = writeln!(out, "vcdfaas_pool_prestarted_memory_mb{{tenant=\"{}\",function=\"{}\"}} {}", escape(&p.tenant), escape(&p.function), p.prestarted_mb);
        }
        out
    }
}

/// Asynchronous calls waiting on RabbitMQ: (tenant, function, messages).
pub fn render_async_depths(depths: &[(String, String, u32)]) -> String {
    let mut out = String::new();
    out.push_str("# HELP vcdfaas_async_queue_depth Asynchronous calls waiting in a function's queue on RabbitMQ.\n");
    out.push_str("# TYPE vcdfaas_async_queue_depth gauge\n");
    for (tenant, function, messages) in depths {
        let _ = writeln!(out, "vcdfaas_async_queue_depth{{tenant=\"{}\",function=\"{}\"}} {messages}", escape(tenant), escape(function));
    }
    out
}

/// The stem cells kept (see `run/stems.rs`) and the memory limits they hold (MB).
pub fn render_stem_cells(cells: usize, memory_mb: i64) -> String {
    let mut out = String::new();
    out.push_str("# HELP vcdfaas_pool_stem_cells Stem cells kept paused for cold starts with no spare of their own.\n");
    out.push_str("# TYPE vcdfaas_pool_stem_cells gauge\n");
    let _ = writeln!(out, "vcdfaas_pool_stem_cells {cells}");
    out.push_str("# HELP vcdfaas_pool_stem_memory_mb Memory limit held by the stem cells (with those being made).\n");
    out.push_str("# TYPE vcdfaas_pool_stem_memory_mb gauge\n");
    let _ = writeln!(out, "vcdfaas_pool_stem_memory_mb {memory_mb}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_and_bucketed() {
        let m = Metrics::default();
        m.record_call("acme", "hello", 200, true, Duration::from_millis(300));
        m.record_call("acme", "hello", 200, false, Duration::from_millis(2));
        m.record_call("acme", "hello", 502, false, Duration::from_millis(40));
        let text = m.render(&[PoolGauge { tenant: "acme".into(), function: "hello".into(), busy: 1, idle: 2, spare: 1, prestarted: 0, prestarted_mb: 0, waiting: 0 }]);
        assert!(text.contains("vcdfaas_calls_total{tenant=\"acme\",function=\"hello\",status=\"200\",start=\"cold\"} 1"));
        assert!(text.contains("vcdfaas_cold_starts_total{tenant=\"acme\",function=\"hello\"} 1"));
        assert!(text.contains("vcdfaas_call_duration_seconds_bucket{tenant=\"acme\",function=\"hello\",le=\"0.0025\"} 1"));
        assert!(text.contains("vcdfaas_call_duration_seconds_count{tenant=\"acme\",function=\"hello\"} 3"));
        assert!(text.contains("vcdfaas_pool_containers{tenant=\"acme\",function=\"hello\",state=\"idle\"} 2"));
        assert!(text.contains("vcdfaas_pool_containers{tenant=\"acme\",function=\"hello\",state=\"spare\"} 1"));
        let figures = &m.tenant_figures()["acme"];
        assert_eq!((figures.calls, figures.errors, figures.cold_starts), (3, 1, 1));
        assert!((figures.mean_ms - 114.0).abs() < 0.5);
    }
}
