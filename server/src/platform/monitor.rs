//! A function's figures over a window (calls, errors, cold starts, duration percentiles), in
//! buckets, from the call records the database keeps (`VCD_FAAS_RECORD_DAYS`): they survive a
//! restart and are the same whichever front or node ran the calls.

use crate::store::CallFigure;
use app::model::{MetricsBucket, MetricsView};

/// A window's length and its buckets' length (ms), by name.
pub fn window(name: &str) -> Option<(i64, i64)> {
    const MINUTE: i64 = 60_000;
    match name {
        "1h" => Some((60 * MINUTE, MINUTE)),
        "24h" => Some((24 * 60 * MINUTE, 15 * MINUTE)),
        "7d" => Some((7 * 24 * 60 * MINUTE, 60 * MINUTE)),
        _ => None,
    }
}

/// Where a window that ends now starts: at a bucket's start, so that the last bucket holds now.
pub fn start_of(now_ms: i64, (length, bucket): (i64, i64)) -> i64 {
    (now_ms / bucket + 1) * bucket - length
}

/// The figures of `calls` (oldest first, none before `since`) in buckets of `bucket` ms.
pub fn figures(name: &str, (length, bucket): (i64, i64), since: i64, calls: &[CallFigure]) -> MetricsView {
    let count = (length / bucket) as usize;
    let mut durations: Vec<Vec<f64>> = vec![Vec::new(); count];
    let mut buckets: Vec<MetricsBucket> = (0..count).map(|i| MetricsBucket { start: since + i as i64 * bucket, ..Default::default() }).collect();
    let mut total = MetricsBucket { start: since, ..Default::default() };
    let mut all = Vec::new();
    for call in calls {
        let Ok(at) = usize::try_from((call.started_at - since).div_euclid(bucket)) else { continue };
        let Some(b) = buckets.get_mut(at) else { continue };
        let failed = call.status_code.is_some_and(|s| s >= 500) || matches!(call.state.as_str(), "failed" | "dead-letter");
        for counts in [&mut *b, &mut total] {
            counts.calls += 1;
            counts.errors += u64::from(failed);
            counts.cold_starts += u64::from(call.cold != 0);
        }
        if let Some(us) = call.duration_us {
            durations[at].push(us as f64 / 1000.0);
            all.push(us as f64 / 1000.0);
        }
    }
    for (b, mut d) in buckets.iter_mut().zip(durations) {
        set_percentiles(b, &mut d);
    }
    set_percentiles(&mut total, &mut all);
    MetricsView { window: name.to_string(), bucket_ms: bucket, since, buckets, total }
}

/// Nearest-rank percentiles of the durations (none: `None`).
fn set_percentiles(b: &mut MetricsBucket, durations: &mut [f64]) {
    durations.sort_by(f64::total_cmp);
    let at = |p: f64| (!durations.is_empty()).then(|| durations[((p / 100.0 * durations.len() as f64).ceil() as usize).clamp(1, durations.len()) - 1]);
    (b.p50_ms, b.p95_ms, b.p99_ms) = (at(50.0), at(95.0), at(99.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(started_at: i64, ms: Option<i64>, status: Option<i64>, cold: bool, state: &str) -> CallFigure {
        CallFigure { started_at, duration_us: ms.map(|m| m * 1000), status_code: status, cold: i64::from(cold), state: state.into() }
    }

    #[test]
    fn calls_fall_in_their_buckets_with_errors_cold_starts_and_percentiles() {
        let hour = window("1h").unwrap();
        let now = 10 * 3_600_000 + 30 * 60_000 + 5_000;
        let since = start_of(now, hour);
        assert_eq!(since, now - 5_000 + 60_000 - 3_600_000, "the last bucket holds now");
        let calls: Vec<CallFigure> = (1..=100)
            .map(|ms| call(since + 1000, Some(ms), Some(200), ms == 1, "done"))
            .chain([call(since + 60_000, Some(7), Some(502), false, "done"), call(since + 61_000, None, None, false, "failed")])
            .chain([call(since + 120_000, None, None, false, "running"), call(since - 1, Some(1), Some(200), false, "done")])
            .collect();
        let view = figures("1h", hour, since, &calls);
        assert_eq!(view.buckets.len(), 60);
        let first = &view.buckets[0];
        assert_eq!((first.calls, first.errors, first.cold_starts), (100, 0, 1));
        assert_eq!((first.p50_ms, first.p95_ms, first.p99_ms), (Some(50.0), Some(95.0), Some(99.0)));
        let second = &view.buckets[1];
        assert_eq!((second.start, second.calls, second.errors), (since + 60_000, 2, 2));
        assert_eq!(second.p99_ms, Some(7.0), "a call that never ended has no duration");
        assert_eq!((view.buckets[2].calls, view.buckets[2].p50_ms), (1, None));
        assert_eq!((view.total.calls, view.total.errors, view.total.cold_starts), (103, 2, 1), "a call before the window is left out");
        assert!(window("2h").is_none());
    }
}
