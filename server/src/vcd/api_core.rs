//! An API call from vCD, whichever broker carried it (AMQP or MQTT): the org check, the call
//! to the function, the answer, and the memory of answers by request id, so a request that
//! arrives twice runs once. Each transport only reads its message into a [`VcdApiCall`] and
//! writes the [`VcdAnswer`] back in its own format.

use crate::calls::dispatch::{Call, Credentials, Delivery, Dispatcher};
use crate::calls::request::{parse_route, CallRequest, CallResponse, CallTrigger};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Answers remembered for requests delivered again.
const REMEMBERED_ANSWERS: usize = 10_000;

/// Headers of vCD's request that the function does not get: vCD's session token stays here.
const DROPPED_HEADERS: [&str; 4] = ["authorization", "x-vcloud-authorization", "cookie", "content-length"];

/// The HTTP request vCD forwards, and who made it as vCD authenticated them.
#[derive(Debug, Clone)]
pub struct VcdApiCall {
    pub method: String,
    /// The path only: `/api/org/{org}/{name}[/…]`.
    pub request_uri: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `urn:vcloud:org:<uuid>` of the caller.
    pub org: String,
    /// `urn:vcloud:user:<uuid>` of the caller.
    pub user: String,
}

/// What vCD turns into the caller's HTTP response.
#[derive(Debug, Clone)]
pub struct VcdAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl VcdAnswer {
    /// An error answer with a JSON body `{"message": …}` (the form vCD extensions use).
    pub fn error(status: u16, message: &str) -> VcdAnswer {
        let body = serde_json::to_vec(&serde_json::json!({ "message": message })).expect("json");
        VcdAnswer { status, headers: vec![("Content-Type".into(), "application/json".into())], body: body.into() }
    }

    fn from_call(answer: CallResponse) -> VcdAnswer {
        // vCD sets the length of what it sends on; a chunked marker would be wrong there.
        let headers = answer
            .headers
            .into_iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("transfer-encoding"))
            .collect();
        VcdAnswer { status: answer.status, headers, body: answer.body }
    }
}

/// Runs the call the request asks for: only a function of the caller's own vCD org runs
/// (any other answers 404, as a missing function does), and the call is recorded as `vcd`.
pub async fn answer(dispatcher: &Dispatcher, request: VcdApiCall) -> VcdAnswer {
    let (function, path) = match parse_route(&request.request_uri) {
        Some(Ok(route)) => route,
        Some(Err(rejection)) => return VcdAnswer::from_call(rejection.into_response()),
        None => return VcdAnswer::error(404, &format!("no function at {}: routes are /api/org/{{org}}/{{name}}", request.request_uri)),
    };
    let mut headers: Vec<(String, String)> =
        request.headers.into_iter().filter(|(k, _)| !DROPPED_HEADERS.contains(&k.to_ascii_lowercase().as_str())).collect();
    // The function may want to know who called; vCD vouches for both.
    headers.push(("x-vcd-org".into(), request.org.clone()));
    headers.push(("x-vcd-user".into(), request.user.clone()));
    let call = Call {
        function,
        request: CallRequest {
            method: request.method.to_ascii_uppercase(),
            path,
            query: request.query.unwrap_or_default(),
            headers,
            body: request.body.into(),
            trigger: CallTrigger::Vcd,
        },
        credentials: Credentials::VcdOrg(super::messages::org_uuid(&request.org)),
        delivery: Delivery::AsAsked,
    };
    let answer = match dispatcher.dispatch(call).await {
        Ok(dispatched) => dispatched.into_response(),
        Err(rejection) => rejection.into_response(),
    };
    VcdAnswer::from_call(answer)
}

/// The answers of recent requests by request id: a request runs once, however often it arrives.
#[derive(Default)]
pub struct Answers {
    /// Each request's answer (made once), and the ids oldest first, to forget the oldest.
    inner: Mutex<(HashMap<String, AnswerCell>, VecDeque<String>)>,
}

type AnswerCell = Arc<OnceCell<VcdAnswer>>;

impl Answers {
    /// The answer to request `id` and whether this was its first arrival: the call runs the
    /// first time; later arrivals wait for and get the same answer. A panic in the call
    /// becomes a 500, never a request left unanswered; a call still running after `within`
    /// (the time vCD waits, when known) is answered 504 while vCD still listens.
    pub async fn answer_once(&self, id: &str, dispatcher: &Dispatcher, request: VcdApiCall, within: Option<Duration>) -> (VcdAnswer, bool) {
        let dispatcher = dispatcher.clone();
        self.once(id, async move {
            let call = tokio::spawn(async move { answer(&dispatcher, request).await });
            let finished = match within {
                Some(within) => match tokio::time::timeout(within, call).await {
                    Ok(finished) => finished,
                    Err(_) => {
                        let why = format!("the function did not answer within the {} s vCD waits for an extension", within.as_secs_f64().ceil());
                        return VcdAnswer::error(504, &why);
                    }
                },
                None => call.await,
            };
            finished.unwrap_or_else(|_| VcdAnswer::error(500, "internal error"))
        })
        .await
    }

    /// The answer to request `id`: made by `run` the first time (then `true`), the same after.
    pub async fn once(&self, id: &str, run: impl std::future::Future<Output = VcdAnswer>) -> (VcdAnswer, bool) {
        let (cell, first) = {
            let mut guard = self.inner.lock().unwrap();
            let (cells, order) = &mut *guard;
            match cells.get(id) {
                Some(cell) => (cell.clone(), false),
                None => {
                    let cell = Arc::new(OnceCell::new());
                    cells.insert(id.to_string(), cell.clone());
                    order.push_back(id.to_string());
                    if order.len() > REMEMBERED_ANSWERS {
                        if let Some(oldest) = order.pop_front() {
                            cells.remove(&oldest);
                        }
                    }
                    (cell, true)
                }
            }
        };
        (cell.get_or_init(|| run).await.clone(), first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_id_runs_once() {
        let answers = Answers::default();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        for round in 0..3 {
            let (answer, first) = answers
                .once("r1", async {
                    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    VcdAnswer::error(418, "x")
                })
                .await;
            assert_eq!(answer.status, 418);
            assert_eq!(first, round == 0);
        }
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
