//! The dispatcher: every call, whatever its source, goes through the same steps — resolve the
//! route, authorize the caller (one rule), admit (the body limit here, places in the pool),
//! run it now or defer it — and comes back in one shape.

use super::deferred::AsyncCalls;
use super::directory::{Directory, Found};
use super::gateway::Gateway;
use super::request::{CallRequest, CallResponse, CallTrigger, FunctionRef, Rejection};
use crate::store::{FunctionRow, Store};
use app::model::{Caller, FunctionStatus};
use std::sync::Arc;

/// Who is calling, as far as the source can tell.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// An HTTP caller's bearer token, if it sent one.
    Bearer(Option<String>),
    /// A user signed in to the portal.
    User(Caller),
    /// vCD vouches for the caller's organisation: its id (the UUID part of the URN).
    VcdOrg(String),
    /// The platform itself, for a call whose caller was let in before: a vCD event for the
    /// tenant whose org it names, an async call accepted earlier.
    Platform,
}

/// When the call runs.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// Now, or later if the request asks for it (`X-Invoke-Type: async`).
    AsAsked,
    /// Now, whatever the request asks (the portal's Test shows the answer).
    Now,
    /// Later, under this invocation id: a second call with the same id is not queued again.
    Deferred(String),
    /// Now, under an invocation already recorded (a queued call taken for running).
    Recorded(String),
}

pub struct Call {
    pub function: FunctionRef,
    pub request: CallRequest,
    pub credentials: Credentials,
    pub delivery: Delivery,
}

#[derive(Debug)]
pub enum Dispatched {
    Answered(CallResponse),
    /// Accepted for later; `new` is false when a call with that id was queued before.
    Queued { id: String, new: bool },
}

impl Dispatched {
    /// The answer a caller gets: the function's, or the 202 that says where to read it later.
    pub fn into_response(self) -> CallResponse {
        match self {
            Dispatched::Answered(response) => response,
            Dispatched::Queued { id, .. } => CallResponse::accepted(&id),
        }
    }
}

#[derive(Clone)]
pub struct Dispatcher {
    directory: Arc<Directory>,
    store: Store,
    gateway: Gateway,
    deferred: Arc<AsyncCalls>,
    max_body_bytes: usize,
}

impl Dispatcher {
    pub fn new(directory: Arc<Directory>, store: Store, gateway: Gateway, deferred: Arc<AsyncCalls>, max_body_bytes: usize) -> Dispatcher {
        Dispatcher { directory, store, gateway, deferred, max_body_bytes }
    }

    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Runs or queues a call; a rejection says why it did neither.
    pub async fn dispatch(&self, call: Call) -> Result<Dispatched, Rejection> {
        let Call { function, mut request, credentials, delivery } = call;
        let found = self.directory.routable(&function.org, &function.name).await.map_err(Rejection::internal)?;
        let found = found.ok_or_else(|| not_found(&function))?;
        self.authorize(&function, &found, credentials).await?;
        let target = found.map_err(|f| Rejection::new(503, not_servable(&f)))?;
        if request.body.len() > self.max_body_bytes {
            return Err(Rejection::new(413, format!("request body is over the {}-byte limit", self.max_body_bytes)));
        }
        let defer_as = match delivery {
            Delivery::Recorded(id) => return Ok(Dispatched::Answered(self.gateway.run(&target, &request, id).await)),
            Delivery::Deferred(id) => id,
            Delivery::AsAsked if request.asks_async() => {
                request.trigger = CallTrigger::Async;
                crate::calls::journal::new_call_id()
            }
            Delivery::Now | Delivery::AsAsked => return Ok(Dispatched::Answered(self.gateway.invoke(target, request).await)),
        };
        match self.deferred.enqueue(&defer_as, &target, &request).await {
            Ok(new) => Ok(Dispatched::Queued { id: defer_as, new }),
            Err(e) => {
                tracing::error!(error = %e, "cannot queue async call");
                Err(Rejection { platform_fault: true, ..Rejection::new(503, "the call could not be queued; try again") })
            }
        }
    }

    /// The one rule: a public function takes any HTTP caller; otherwise the caller must be of
    /// the function's tenant (or the provider). A caller of another tenant is told exactly what
    /// a missing function is told, so names of other tenants never leak.
    async fn authorize(&self, function: &FunctionRef, found: &Found, credentials: Credentials) -> Result<(), Rejection> {
        let public = found.as_ref().map_or_else(|f| f.public, |target| target.function.public);
        let caller = match credentials {
            Credentials::Platform => return Ok(()),
            // vCD's callers are users of vCD orgs: their org must be the function's tenant,
            // public or not.
            Credentials::VcdOrg(org_id) => {
                let tenant = self.store.tenant_by_vcd_org(&org_id).await.map_err(Rejection::internal)?;
                return match tenant {
                    Some(t) if t.slug == function.org => Ok(()),
                    _ => Err(not_found(function)),
                };
            }
            _ if public => return Ok(()),
            Credentials::User(caller) => caller,
            Credentials::Bearer(None) => {
                return Err(Rejection::new(
                    401,
                    format!("calling this function needs `Authorization: Bearer <token>` of a user of org {:?}", function.org),
                ))
            }
            Credentials::Bearer(Some(token)) => {
                let check = self.directory.caller_by_token(&token).await.map_err(Rejection::internal)?;
                let caller = check.caller().map_err(|why| Rejection::new(401, why))?;
                if !caller.scope.may_invoke() {
                    return Err(Rejection::new(403, "this token's scope is \"read\": it may not call functions (make one with scope \"invoke\" or \"full\")"));
                }
                caller
            }
        };
        if caller.is_provider() || caller.org == function.org {
            Ok(())
        } else {
            Err(not_found(function))
        }
    }
}

fn not_found(function: &FunctionRef) -> Rejection {
    Rejection::new(404, format!("no function {:?} in org {:?}", function.name, function.org))
}

/// Why a function that has no serving version cannot be called, and what to do.
pub fn not_servable(f: &FunctionRow) -> String {
    if f.status == FunctionStatus::Failed {
        format!("function {:?} has no version that built: fix its code and save a new version (its build log says what failed)", f.name)
    } else {
        format!("function {:?} has no ready version yet (status {}); try again when it is ready", f.name, f.status)
    }
}
