//! A function's call history searched through the REST API (filters, pages, one call by its
//! request id) and its figures over a window, both from the records in the database. Runs on
//! SQLite and on PostgreSQL.

mod common;

use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashSet;

/// Answers 500 when asked to, 404 when asked for, else 200.
const MOODY: &str = r#"module.exports = async (event) => {
  if (event.query.fail) throw new Error("asked to fail");
  if (event.query.missing) return { statusCode: 404, body: "none here" };
  return "fine";
};"#;

/// The calls of a search, and its next cursor.
async fn search(app: &TestApp, token: &str, query: &str) -> (Vec<Value>, Option<String>) {
    let r = app.get(token, &format!("/api/v1/functions/moody/invocations?{query}")).await;
    let cursor = r.headers().get("x-next-cursor").map(|v| v.to_str().unwrap().to_string());
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    (body.as_array().unwrap().clone(), cursor)
}

async fn the_history_is_searched_and_paged_and_the_figures_kept(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "moody", "nodejs", MOODY).await;
    let before = server::store::now_ms();
    let mut ids = Vec::new();
    for path in ["moody", "moody?fail=1", "moody", "moody?missing=1", "moody", "moody?fail=1", "moody"] {
        let r = app.call(Some(&t.dev), &t.org, path).await;
        ids.push(r.headers()["x-vcd-faas-request-id"].to_str().unwrap().to_string());
    }
    let after = server::store::now_ms() + 1;

    // Filters: by class, by code, errors, success, trigger, version, time.
    let statuses = |calls: &[Value]| calls.iter().map(|c| c["status_code"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(statuses(&search(&app, &t.dev, "status=5xx").await.0), [500, 500]);
    assert_eq!(statuses(&search(&app, &t.dev, "status=error").await.0), [500, 500]);
    assert_eq!(statuses(&search(&app, &t.dev, "status=404").await.0), [404]);
    assert_eq!(statuses(&search(&app, &t.dev, "status=success").await.0), [200, 200, 200, 200]);
    assert_eq!(search(&app, &t.dev, "trigger=http").await.0.len(), 7);
    assert_eq!(search(&app, &t.dev, "trigger=schedule").await.0.len(), 0);
    assert_eq!(search(&app, &t.dev, "version=1").await.0.len(), 7);
    assert_eq!(search(&app, &t.dev, "version=2").await.0.len(), 0);
    assert_eq!(search(&app, &t.dev, &format!("since={before}&until={after}")).await.0.len(), 7);
    assert_eq!(search(&app, &t.dev, &format!("since={after}")).await.0.len(), 0);

    // One call by the id its answer carried: request, answer, logs, path.
    let (one, _) = search(&app, &t.dev, &format!("request_id={}", ids[1])).await;
    assert_eq!(one.len(), 1);
    assert_eq!((one[0]["id"].as_str(), one[0]["status_code"].as_i64()), (Some(ids[1].as_str()), Some(500)));
    assert!(one[0]["logs"].as_str().unwrap().contains("asked to fail"), "{}", one[0]);

    // Pages of 3, newest first, each call once; the last page has no next cursor.
    let mut seen = Vec::new();
    let mut query = "limit=3".to_string();
    let mut pages = 0;
    loop {
        let (calls, cursor) = search(&app, &t.dev, &query).await;
        pages += 1;
        seen.extend(calls.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        match cursor {
            Some(cursor) => query = format!("limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first, "every call once, the newest first");
    let (errors_page, cursor) = search(&app, &t.dev, "status=error&limit=1").await;
    let (next, end) = search(&app, &t.dev, &format!("status=error&limit=1&cursor={}", cursor.unwrap())).await;
    assert_eq!((errors_page[0]["id"].as_str(), next[0]["id"].as_str(), end), (Some(ids[5].as_str()), Some(ids[1].as_str()), None));

    // Bad queries say what to fix, as JSON.
    for (query, says) in [
        ("status=bogus", "status \"bogus\" is not one of"),
        ("limit=0", "limit must be between 1 and 500"),
        ("limit=abc", "query string"),
        ("cursor=nonsense", "is not one this API gave"),
        ("since=5&until=5", "must be after since"),
        ("colour=red", "unknown field `colour`"),
    ] {
        let (status, body) = json_of(app.get(&t.dev, &format!("/api/v1/functions/moody/invocations?{query}")).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["error"].as_str().unwrap_or_default().contains(says), "{query}: {body}");
    }

    // The figures: the window's buckets and its total, from the records.
    let (status, m) = json_of(app.get(&t.dev, "/api/v1/functions/moody/metrics?window=1h").await).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!((m["window"].as_str(), m["bucket_ms"].as_i64(), m["buckets"].as_array().unwrap().len()), (Some("1h"), Some(60_000), 60));
    assert_eq!((m["total"]["calls"].as_u64(), m["total"]["errors"].as_u64(), m["total"]["cold_starts"].as_u64()), (Some(7), Some(2), Some(1)));
    let busy: Vec<&Value> = m["buckets"].as_array().unwrap().iter().filter(|b| b["calls"].as_u64() > Some(0)).collect();
    let in_buckets: u64 = busy.iter().map(|b| b["calls"].as_u64().unwrap()).sum();
    assert_eq!(in_buckets, 7);
    let (p50, p99) = (m["total"]["p50_ms"].as_f64().unwrap(), m["total"]["p99_ms"].as_f64().unwrap());
    assert!(p50 > 0.0 && p99 >= p50, "{m}");
    for window in ["24h", "7d"] {
        let (status, m) = json_of(app.get(&t.dev, &format!("/api/v1/functions/moody/metrics?window={window}")).await).await;
        assert_eq!((status, m["total"]["calls"].as_u64()), (StatusCode::OK, Some(7)), "{window}: {m}");
    }
    let (status, body) = json_of(app.get(&t.dev, "/api/v1/functions/moody/metrics?window=2h").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("window must be 1h, 24h or 7d"), "{body}");

    // Another tenant sees neither.
    let other = app.tenant().await;
    for path in ["/api/v1/functions/moody/invocations", "/api/v1/functions/moody/metrics"] {
        let (status, _) = json_of(app.get(&other.dev, &format!("{path}?org={}", t.org)).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), 7);
    app.finish().await;
}

on_both_databases!(the_history_is_searched_and_paged_and_the_figures_kept);
