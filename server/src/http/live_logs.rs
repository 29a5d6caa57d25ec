//! Live logs: a function's calls and their logs as they end, as server-sent events, for the
//! portal (signed in) and the API (bearer token). `GET /api/v1/functions/{name}/logs`:
//! first the last `tail` calls (oldest first), then with `follow=true` each call as it ends;
//! each event is `event: call` with one call as JSON, as the invocations list gives it.

use super::api::{bearer_token, ApiCaller, ApiError, ApiQuery};
use super::state::AppState;
use app::model::{Caller, InvocationView};
use app::platform::parts::*;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{request::Parts, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

/// How often a follower looks for calls that ended: well within the two seconds a user waits.
const POLL: Duration = Duration::from_millis(500);

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/functions/{name}/logs", get(live_logs))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    org: Option<String>,
    tail: Option<i64>,
    follow: Option<bool>,
}

/// A bearer token's user, or the portal's signed-in user (the browser's EventSource sends the
/// session cookie, not a token).
struct TokenOrSession(Caller);

impl FromRequestParts<AppState> for TokenOrSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if bearer_token(parts).is_some() {
            return Ok(TokenOrSession(ApiCaller::from_request_parts(parts, state).await?.0));
        }
        let session = tower_sessions::Session::from_request_parts(parts, state).await.ok();
        let user_id = match session {
            Some(session) => session.get::<i64>("user_id").await.ok().flatten(),
            None => None,
        };
        let caller = match user_id {
            Some(id) => state.service.caller_by_user_id(id).await?,
            None => None,
        };
        caller.map(TokenOrSession).ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "sign in to the portal or send `Authorization: Bearer <token>`")
        })
    }
}

async fn live_logs(
    State(state): State<AppState>,
    TokenOrSession(caller): TokenOrSession,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let org = q.org.clone().unwrap_or_else(|| caller.org.clone());
    let (tail, feed) = state.service.call_feed(&caller, &org, &name, q.tail.unwrap_or(10)).await?;
    let follow = q.follow.unwrap_or(false);
    let events = stream::unfold((VecDeque::from(tail), follow.then_some(feed)), |(mut pending, mut feed)| async move {
        loop {
            if let Some(call) = pending.pop_front() {
                return Some((Ok(call_event(&call)), (pending, feed)));
            }
            let following = feed.as_mut()?;
            tokio::time::sleep(POLL).await;
            match following.next().await {
                Ok(calls) => pending.extend(calls),
                // A database hiccup ends the stream; the EventSource reconnects.
                Err(e) => {
                    tracing::warn!(error = %e, "live logs: cannot read the calls");
                    return None;
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive")))
}

fn call_event(call: &InvocationView) -> Event {
    Event::default().event("call").json_data(call).unwrap_or_else(|_| Event::default().comment("a call that does not serialize"))
}
