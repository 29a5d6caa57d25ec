//! vcd-sim as a user sees it: the built binary, real HTTP, and a real RabbitMQ at 127.0.0.1:5672
//! (guest/guest). The fake extension here is written from the protocol doc with lapin directly.

use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use reqwest::Client;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const XML: &str = "application/*+xml;version=37.0";
const VMEXT: &str = "http://www.vmware.com/vcloud/extension/v1.5";
const VCLOUD: &str = "http://www.vmware.com/vcloud/v1.5";

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

/// Computed here independently of the sim, as a README reader would.
fn org_urn(name: &str) -> String {
    format!("urn:vcloud:org:{}", Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("vcd-sim:org:{name}").as_bytes()))
}

fn user_urn(user: &str, org: &str) -> String {
    format!("urn:vcloud:user:{}", Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("vcd-sim:user:{user}@{org}").as_bytes()))
}

/// A running vcd-sim, killed on drop.
struct Sim {
    base: String,
    prefix: String,
    http: Client,
    _child: tokio::process::Child,
}

impl Sim {
    async fn start(extra: &[&str]) -> Sim {
        let prefix = unique("test");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_vcd-sim"));
        cmd.args(["--listen", "127.0.0.1:0", "--amqp-url", AMQP_URL, "--prefix", &prefix])
            .args(["--reply-exchange", &format!("{prefix}.reply"), "--org", "acme", "--org", "globex"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("vcd-sim starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("vcd-sim prints its address")
            .unwrap()
            .expect("a line on stdout");
        let base = line.strip_prefix("vcd-sim listening on ").expect("the address line").to_string();
        let sim = Sim { base, prefix, http: Client::new(), _child: child };
        sim.wait_for_broker().await;
        sim
    }

    async fn wait_for_broker(&self) {
        for _ in 0..100 {
            let state: Value = self.http.get(self.url("/sim/state")).send().await.unwrap().json().await.unwrap();
            if state["amqpConnected"] == true {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("vcd-sim did not connect to RabbitMQ at {AMQP_URL}");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Provider login through cloudapi; returns the Bearer token.
    async fn admin_token(&self) -> String {
        let r = self
            .http
            .post(self.url("/cloudapi/1.0.0/sessions/provider"))
            .basic_auth("administrator@System", Some("vmware"))
            .header("Accept", "application/json;version=37.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.headers()["x-vmware-vcloud-access-token"].to_str().unwrap().to_string()
    }

    async fn tenant_token(&self, user: &str, org: &str) -> String {
        let r = self
            .http
            .post(self.url("/cloudapi/1.0.0/sessions"))
            .basic_auth(format!("{user}@{org}"), Some("secret"))
            .header("Accept", "application/json;version=37.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.headers()["x-vmware-vcloud-access-token"].to_str().unwrap().to_string()
    }

    fn xml(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token).header("Accept", XML)
    }

    async fn create_service(&self, token: &str, body: &str) -> reqwest::Response {
        self.xml(reqwest::Method::POST, "/api/admin/extension/service", token)
            .header("Content-Type", "application/vnd.vmware.admin.service+xml")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Registers a service and returns its href.
    async fn register(&self, token: &str, name: &str, exchange: &str, enabled: bool, priority: u8, patterns: &[&str]) -> String {
        let r = self.create_service(token, &service_xml(name, &format!("test.{name}"), exchange, enabled, priority, patterns)).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 201, "{text}");
        attr(&text, "href")
    }

    async fn set_enabled(&self, token: &str, href: &str, name: &str, namespace: &str, exchange: &str, enabled: bool) -> reqwest::Response {
        self.http
            .put(href)
            .bearer_auth(token)
            .header("Accept", XML)
            .header("Content-Type", "application/vnd.vmware.admin.service+xml")
            .body(service_xml(name, namespace, exchange, enabled, 50, &[]))
            .send()
            .await
            .unwrap()
    }
}

impl Drop for Sim {
    /// The sim declares durable exchanges named after the test's prefix; remove them so test runs
    /// leave nothing behind on the broker.
    fn drop(&mut self) {
        let names = [format!("{}.reply", self.prefix), format!("{}.notifications20", self.prefix)];
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(conn) = Connection::connect(AMQP_URL, ConnectionProperties::default()).await {
                    if let Ok(ch) = conn.create_channel().await {
                        for name in names {
                            let _ = ch.exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default()).await;
                        }
                    }
                    let _ = conn.close(200, "bye".into()).await;
                }
            });
        })
        .join();
    }
}

/// A service body in schema order, the way the platform will send it.
fn service_xml(name: &str, namespace: &str, exchange: &str, enabled: bool, priority: u8, patterns: &[&str]) -> String {
    let filters = if patterns.is_empty() {
        String::new()
    } else {
        let inner: String = patterns.iter().map(|p| format!("<vmext:ApiFilter><vmext:UrlPattern>{p}</vmext:UrlPattern></vmext:ApiFilter>")).collect();
        format!("<vmext:ApiFilters>{inner}</vmext:ApiFilters>")
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <vmext:Service xmlns=\"{VCLOUD}\" xmlns:vmext=\"{VMEXT}\" name=\"{name}\">\
         <Description>test service</Description><vmext:Namespace>{namespace}</vmext:Namespace>\
         <vmext:Enabled>{enabled}</vmext:Enabled><vmext:AuthorizationEnabled>false</vmext:AuthorizationEnabled>\
         <vmext:RoutingKey>{name}</vmext:RoutingKey><vmext:Priority>{priority}</vmext:Priority>\
         <vmext:Exchange>{exchange}</vmext:Exchange>{filters}</vmext:Service>"
    )
}

/// The first value of attribute `name` in an XML text (enough for assertions).
fn attr(xml: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    let start = xml.find(&key).unwrap_or_else(|| panic!("no {name} attribute in {xml}")) + key.len();
    xml[start..].split('"').next().unwrap().to_string()
}

/// An attribute of the first `element` (e.g. a query record), not of the document root.
fn record_attr(xml: &str, element: &str, name: &str) -> String {
    let start = xml.find(&format!("<{element} ")).unwrap_or_else(|| panic!("no {element} in {xml}"));
    attr(&xml[start..], name)
}

fn element_text(xml: &str, qname: &str) -> String {
    let open = format!("<{qname}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{qname}> in {xml}")) + open.len();
    xml[start..].split('<').next().unwrap().to_string()
}

async fn amqp_channel() -> (Connection, Channel) {
    let conn = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.expect("RabbitMQ at 127.0.0.1:5672");
    let channel = conn.create_channel().await.unwrap();
    (conn, channel)
}

/// A fake extension: its own direct exchange (auto-deleted when the test ends) and a queue
/// bound with the routing key.
async fn extension_queue(channel: &Channel, exchange: &str, routing_key: &str) -> lapin::Consumer {
    let opts = ExchangeDeclareOptions { auto_delete: true, ..Default::default() };
    channel.exchange_declare(exchange.into(), ExchangeKind::Direct, opts, FieldTable::default()).await.unwrap();
    let queue = channel
        .queue_declare("".into(), QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    channel
        .queue_bind(queue.name().clone(), exchange.into(), routing_key.into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .unwrap();
    channel
        .basic_consume(queue.name().clone(), "".into(), BasicConsumeOptions { no_ack: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap()
}

async fn next_delivery(consumer: &mut lapin::Consumer) -> lapin::message::Delivery {
    tokio::time::timeout(Duration::from_secs(10), consumer.next()).await.expect("a message within 10 s").unwrap().unwrap()
}

fn header_str(props: &BasicProperties, key: &str) -> String {
    let headers = props.headers().as_ref().expect("AMQP headers");
    match headers.inner().get(key) {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.to_string(),
        other => panic!("header {key}: {other:?}"),
    }
}

/// Answers one request as an extension does (protocol doc §2.4).
async fn reply(channel: &Channel, delivery: &lapin::message::Delivery, reply: Value) {
    let props = &delivery.properties;
    let exchange = header_str(props, "replyToExchange");
    let routing_key = props.reply_to().as_ref().unwrap().to_string();
    let correlation = props.correlation_id().as_ref().unwrap().clone();
    channel
        .basic_publish(
            exchange.as_str().into(),
            routing_key.as_str().into(),
            BasicPublishOptions::default(),
            &serde_json::to_vec(&reply).unwrap(),
            BasicProperties::default().with_correlation_id(correlation),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn versions_and_cloudapi_login() {
    let sim = Sim::start(&[]).await;
    let r = sim.http.get(sim.url("/api/versions")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("<SupportedVersions xmlns=\"http://www.vmware.com/vcloud/versions\""), "{body}");
    assert!(body.contains("<Version>37.0</Version>") && body.contains("<Version>33.0</Version>"), "{body}");
    assert_eq!(element_text(&body, "LoginUrl"), sim.url("/api/sessions"));

    let login = |path: &'static str, who: &'static str, password: &'static str, accept: &'static str| {
        sim.http.post(sim.url(path)).basic_auth(who, Some(password)).header("Accept", accept).send()
    };
    let ok = login("/cloudapi/1.0.0/sessions/provider", "administrator@System", "vmware", "application/json;version=37.0").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-vmware-vcloud-token-type"], "Bearer");
    let token = ok.headers()["x-vmware-vcloud-access-token"].to_str().unwrap().to_string();
    let session: Value = ok.json().await.unwrap();
    assert_eq!(session["org"]["id"], org_urn("System"));
    assert_eq!(session["user"]["id"], user_urn("administrator", "System"));

    let wrong = login("/cloudapi/1.0.0/sessions/provider", "administrator@System", "nope", "application/json;version=37.0").await.unwrap();
    assert_eq!(wrong.status(), 401);
    let err: Value = wrong.json().await.unwrap();
    assert_eq!(err["majorErrorCode"], 401);
    let tenant_on_provider = login("/cloudapi/1.0.0/sessions/provider", "alice@acme", "x", "application/json;version=37.0").await.unwrap();
    assert_eq!(tenant_on_provider.status(), 401);
    let no_version = login("/cloudapi/1.0.0/sessions/provider", "administrator@System", "vmware", "application/json").await.unwrap();
    assert_eq!(no_version.status(), 406);
    let old_version = login("/cloudapi/1.0.0/sessions/provider", "administrator@System", "vmware", "application/json;version=30.0").await.unwrap();
    assert_eq!(old_version.status(), 406);

    let tenant = login("/cloudapi/1.0.0/sessions", "alice@acme", "anything", "application/json;version=36.0").await.unwrap();
    assert_eq!(tenant.status(), 200);
    let unknown_org = login("/cloudapi/1.0.0/sessions", "alice@nowhere", "anything", "application/json;version=36.0").await.unwrap();
    assert_eq!(unknown_org.status(), 401);

    // The token works; without the version in Accept it is 406 with a vCD error, without a token 401.
    let q = sim.xml(reqwest::Method::GET, "/api/query?type=adminService", &token).send().await.unwrap();
    assert_eq!(q.status(), 200);
    assert!(q.text().await.unwrap().contains("<QueryResultRecords"));
    let q = sim.http.get(sim.url("/api/query?type=adminService")).bearer_auth(&token).header("Accept", "application/*+xml").send().await.unwrap();
    assert_eq!(q.status(), 406);
    let err = q.text().await.unwrap();
    assert_eq!(attr(&err, "majorErrorCode"), "406");
    assert!(err.contains("<Error xmlns=\"http://www.vmware.com/vcloud/v1.5\""), "{err}");
    let q = sim.http.get(sim.url("/api/query?type=adminService")).header("Accept", XML).send().await.unwrap();
    assert_eq!(q.status(), 401);
}

#[tokio::test]
async fn legacy_only_logs_in_through_api_sessions() {
    let sim = Sim::start(&["--legacy-only", "--api-versions", "31.0,32.0"]).await;
    let body = sim.http.get(sim.url("/api/versions")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("<Version>32.0</Version>") && !body.contains("<Version>37.0</Version>"), "{body}");

    let cloudapi = sim
        .http
        .post(sim.url("/cloudapi/1.0.0/sessions/provider"))
        .basic_auth("administrator@System", Some("vmware"))
        .header("Accept", "application/json;version=32.0")
        .send()
        .await
        .unwrap();
    assert_eq!(cloudapi.status(), 404);

    let r = sim
        .http
        .post(sim.url("/api/sessions"))
        .basic_auth("administrator@System", Some("vmware"))
        .header("Accept", "application/*+xml;version=32.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-vmware-vcloud-access-token").is_none());
    let token = r.headers()["x-vcloud-authorization"].to_str().unwrap().to_string();
    let session = r.text().await.unwrap();
    assert_eq!(attr(&session, "org"), "System");

    let get = |token: String| {
        sim.http
            .get(sim.url("/api/admin/extension/service/query"))
            .header("x-vcloud-authorization", token)
            .header("Accept", "application/*+xml;version=32.0")
            .send()
    };
    assert_eq!(get(token.clone()).await.unwrap().status(), 200);
    let out = sim
        .http
        .delete(sim.url("/api/session"))
        .header("x-vcloud-authorization", &token)
        .header("Accept", "application/*+xml;version=32.0")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(get(token).await.unwrap().status(), 401);
}

#[tokio::test]
async fn sessions_expire_on_request_and_a_new_login_works() {
    let sim = Sim::start(&[]).await;
    let token = sim.admin_token().await;
    let query = |t: String| sim.xml(reqwest::Method::GET, "/api/query?type=adminService", &t).send();
    assert_eq!(query(token.clone()).await.unwrap().status(), 200);
    let r: Value = sim.http.post(sim.url("/sim/expire-sessions")).send().await.unwrap().json().await.unwrap();
    assert!(r["expired"].as_u64().unwrap() >= 1);
    let refused = query(token).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("expired"));
    assert_eq!(query(sim.admin_token().await).await.unwrap().status(), 200);
}

#[tokio::test]
async fn service_registration_rules() {
    let sim = Sim::start(&[]).await;
    let token = sim.admin_token().await;
    let body = service_xml("faas", "com.example.faas", "faas-ex", false, 60, &["/api/org/[^/]+/function/.*"]);
    let r = sim.create_service(&token, &body).await;
    assert_eq!(r.status(), 201);
    let created = r.text().await.unwrap();
    let href = attr(&created, "href");
    let uuid = href.rsplit('/').next().unwrap().to_string();
    assert_eq!(href, sim.url(&format!("/api/admin/extension/service/{uuid}")));
    assert_eq!(attr(&created, "id"), format!("urn:vcloud:externalService:{uuid}"));
    assert_eq!(element_text(&created, "vmext:Namespace"), "com.example.faas");
    assert_eq!(element_text(&created, "vmext:Priority"), "60");
    assert_eq!(element_text(&created, "vmext:UrlPattern"), "/api/org/[^/]+/function/.*");

    // Same namespace again is refused; a tenant may not manage services; wrong media type is 415.
    let dup = sim.create_service(&token, &service_xml("other", "com.example.faas", "x", false, 50, &[])).await;
    assert_eq!(dup.status(), 400);
    assert!(dup.text().await.unwrap().contains("namespace"));
    let tenant = sim.tenant_token("alice", "acme").await;
    assert_eq!(sim.create_service(&tenant, &service_xml("t", "t.t", "x", false, 50, &[])).await.status(), 403);
    let wrong_type = sim
        .xml(reqwest::Method::POST, "/api/admin/extension/service", &token)
        .header("Content-Type", "application/xml")
        .body(service_xml("t", "t.t", "x", false, 50, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);

    // Found by name and namespace, not by another name.
    let q = sim
        .xml(reqwest::Method::GET, "/api/query?type=adminService&filter=name==faas;namespace==com.example.faas", &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(record_attr(&q, "AdminServiceRecord", "href"), href);
    assert_eq!(record_attr(&q, "AdminServiceRecord", "routingKey"), "faas");
    assert_eq!(record_attr(&q, "AdminServiceRecord", "enabled"), "false");
    assert_eq!(q.matches("<AdminServiceRecord").count(), 1);
    let none = sim.xml(reqwest::Method::GET, "/api/admin/extension/service/query?filter=name==nope", &token).send().await.unwrap();
    assert!(!none.text().await.unwrap().contains("AdminServiceRecord"));

    // Enable; delete while enabled is refused; disable, then delete works and the filters go too.
    let r = sim.set_enabled(&token, &href, "faas", "com.example.faas", "faas-ex", true).await;
    assert_eq!(r.status(), 200);
    assert_eq!(element_text(&r.text().await.unwrap(), "vmext:Enabled"), "true");
    let r = sim.http.delete(&href).bearer_auth(&token).header("Accept", XML).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("disable the service first"));
    let renamed = sim.set_enabled(&token, &href, "faas", "com.example.other", "faas-ex", true).await;
    assert_eq!(renamed.status(), 400);
    assert_eq!(sim.set_enabled(&token, &href, "faas", "com.example.faas", "faas-ex", false).await.status(), 200);
    let r = sim.http.delete(&href).bearer_auth(&token).header("Accept", XML).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(sim.http.get(&href).bearer_auth(&token).header("Accept", XML).send().await.unwrap().status(), 404);
    let state: Value = sim.http.get(sim.url("/sim/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["services"], json!([]));
}

#[tokio::test]
async fn service_bodies_out_of_schema_order_are_refused() {
    let sim = Sim::start(&[]).await;
    let token = sim.admin_token().await;
    let head = format!("<vmext:Service xmlns=\"{VCLOUD}\" xmlns:vmext=\"{VMEXT}\" name=\"s\">");
    let swapped = format!(
        "{head}<vmext:Namespace>a.b</vmext:Namespace><vmext:RoutingKey>rk</vmext:RoutingKey>\
         <vmext:Enabled>true</vmext:Enabled><vmext:Exchange>ex</vmext:Exchange></vmext:Service>"
    );
    let r = sim.create_service(&token, &swapped).await;
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("vmext:Enabled is out of order"), "{text}");

    let no_exchange = format!("{head}<vmext:Namespace>a.b</vmext:Namespace><vmext:RoutingKey>rk</vmext:RoutingKey></vmext:Service>");
    let r = sim.create_service(&token, &no_exchange).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("vmext:Exchange is missing"));

    let no_name = format!("<vmext:Service xmlns:vmext=\"{VMEXT}\"><vmext:Namespace>a</vmext:Namespace></vmext:Service>");
    let r = sim.create_service(&token, &no_name).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("name attribute"));
    let state: Value = sim.http.get(sim.url("/sim/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["services"], json!([]));
}

#[tokio::test]
async fn api_filters_are_added_listed_and_deleted() {
    let sim = Sim::start(&[]).await;
    let token = sim.admin_token().await;
    let href = sim.register(&token, "filters", "ex", false, 50, &[]).await;
    let list_url = format!("{href}/apifilters");
    let add = |pattern: String| {
        sim.http
            .post(&list_url)
            .bearer_auth(&token)
            .header("Accept", XML)
            .header("Content-Type", "application/vnd.vmware.admin.apiFilter+xml")
            .body(format!("<vmext:ApiFilter xmlns:vmext=\"{VMEXT}\"><vmext:UrlPattern>{pattern}</vmext:UrlPattern></vmext:ApiFilter>"))
            .send()
    };
    let r = add("/api/org/[^/]+/fn(/.*)?".into()).await.unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&sim.url("/api/admin/extension/service/apifilter/")), "{location}");
    assert_eq!(element_text(&r.text().await.unwrap(), "vmext:UrlPattern"), "/api/org/[^/]+/fn(/.*)?");

    assert_eq!(add("/api/(unclosed".into()).await.unwrap().status(), 400);
    assert_eq!(add(format!("/api/{}", "a".repeat(1100))).await.unwrap().status(), 400);

    let list = sim.http.get(&list_url).bearer_auth(&token).header("Accept", XML).send().await.unwrap().text().await.unwrap();
    assert_eq!(list.matches("<ApiFilterRecord").count(), 1, "{list}");
    assert_eq!(record_attr(&list, "ApiFilterRecord", "urlPattern"), "/api/org/[^/]+/fn(/.*)?");
    assert_eq!(record_attr(&list, "ApiFilterRecord", "href"), location);
    let one = sim.http.get(&location).bearer_auth(&token).header("Accept", XML).send().await.unwrap();
    assert_eq!(one.status(), 200);
    let del = sim.http.delete(&location).bearer_auth(&token).header("Accept", XML).send().await.unwrap();
    assert_eq!(del.status(), 204);
    let list = sim.http.get(&list_url).bearer_auth(&token).header("Accept", XML).send().await.unwrap().text().await.unwrap();
    assert!(!list.contains("<ApiFilterRecord"), "{list}");
    assert_eq!(sim.http.get(&location).bearer_auth(&token).header("Accept", XML).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn front_door_round_trip() {
    let sim = Sim::start(&[]).await;
    let (_conn, channel) = amqp_channel().await;
    let exchange = unique("ext");
    let mut consumer = extension_queue(&channel, &exchange, "faas").await;
    let admin = sim.admin_token().await;
    sim.register(&admin, "faas", &exchange, true, 50, &["/api/org/[^/]+/function/.*"]).await;

    let acme = org_urn("acme");
    let tenant = sim.tenant_token("alice", "acme").await;
    let path = format!("/api/org/{acme}/function/hello");
    let call = tokio::spawn(
        sim.http
            .post(sim.url(&format!("{path}?x=1&y=two")))
            .bearer_auth(&tenant)
            .header("Accept", "application/json;version=37.0")
            .header("Content-Type", "application/json")
            .body(r#"{"name":"world"}"#)
            .send(),
    );
    let delivery = next_delivery(&mut consumer).await;
    let props = &delivery.properties;
    assert_eq!(header_str(props, "replyToExchange"), format!("{}.reply", sim.prefix));
    assert_eq!(header_str(props, "messageType"), "ProcessHttpRequest");
    assert_eq!(props.content_type().as_ref().unwrap().as_str(), "application/json");
    assert!(props.reply_to().is_some() && props.correlation_id().is_some());
    let message: Value = serde_json::from_slice(&delivery.data).unwrap();
    let (req, ctx) = (&message[0], &message[1]);
    assert_eq!(message.as_array().unwrap().len(), 2);
    assert_eq!(req["method"], "POST");
    assert_eq!(req["requestUri"], path);
    assert_eq!(req["queryString"], "x=1&y=two");
    assert_eq!(req["request"], true);
    let body = base64::engine::general_purpose::STANDARD.decode(req["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, br#"{"name":"world"}"#);
    let header = |name: &str| {
        req["headers"].as_object().unwrap().iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str().unwrap().to_string())
    };
    assert_eq!(header("accept").unwrap(), "application/json;version=37.0");
    assert_eq!(header("content-type").unwrap(), "application/json");
    assert_eq!(header("authorization").unwrap(), format!("Bearer {tenant}"));
    assert!(req["localPort"].as_u64().unwrap() > 0 && req["remotePort"].as_u64().unwrap() > 0);
    assert_eq!(req["remoteAddr"], "127.0.0.1");
    assert_eq!(ctx["org"], acme);
    assert_eq!(ctx["user"], user_urn("alice", "acme"));
    assert!(ctx["rights"].is_array());

    let out = br#"{"hello":"world"}"#;
    let b64 = base64::engine::general_purpose::STANDARD.encode(out);
    let reply_body = json!({"id": req["id"], "headers": {"Content-Type": "application/json", "Content-Length": out.len(), "X-Function": "hello"},
                            "statusCode": 201, "body": b64, "request": false});
    reply(&channel, &delivery, reply_body).await;
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-function"], "hello");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.bytes().await.unwrap().as_ref(), out);

    // Basic credentials straight at the front door; no query, no body.
    let call = tokio::spawn(
        sim.http
            .get(sim.url(&format!("/api/org/{}/function/x", org_urn("globex"))))
            .basic_auth("bob@globex", Some("pw"))
            .header("Accept", "application/json;version=37.0")
            .send(),
    );
    let delivery = next_delivery(&mut consumer).await;
    let message: Value = serde_json::from_slice(&delivery.data).unwrap();
    assert_eq!(message[0]["queryString"], Value::Null);
    assert_eq!(message[0]["body"], "");
    assert_eq!(message[1]["org"], org_urn("globex"));
    reply(&channel, &delivery, json!({"id": message[0]["id"], "headers": {}, "statusCode": 204, "body": "", "request": false})).await;
    assert_eq!(call.await.unwrap().unwrap().status(), 204);

    let state: Value = sim.http.get(sim.url("/sim/state")).send().await.unwrap().json().await.unwrap();
    let calls = state["requests"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1]["path"], path);
    assert_eq!(calls[1]["status"], 201);
    assert_eq!(calls[1]["org"], "acme");
}

#[tokio::test]
async fn front_door_routes_by_pattern_enablement_and_priority() {
    let sim = Sim::start(&[]).await;
    let (_conn, channel) = amqp_channel().await;
    let (low_ex, high_ex) = (unique("low"), unique("high"));
    let mut low = extension_queue(&channel, &low_ex, "low").await;
    let mut high = extension_queue(&channel, &high_ex, "high").await;
    let admin = sim.admin_token().await;
    sim.register(&admin, "low", &low_ex, true, 10, &["/api/shared/.*"]).await;
    sim.register(&admin, "high", &high_ex, true, 90, &["/api/shared/.*"]).await;
    sim.register(&admin, "off", &low_ex, false, 100, &["/api/off/.*"]).await;

    let get = |path: &str| sim.http.get(sim.url(path)).basic_auth("alice@acme", Some("pw")).header("Accept", "application/json;version=37.0").send();
    let call = tokio::spawn(get("/api/shared/thing"));
    let delivery = next_delivery(&mut high).await;
    let id = serde_json::from_slice::<Value>(&delivery.data).unwrap()[0]["id"].clone();
    reply(&channel, &delivery, json!({"id": id, "headers": {}, "statusCode": 200, "body": "aGk=", "request": false})).await;
    assert_eq!(call.await.unwrap().unwrap().text().await.unwrap(), "hi");
    assert!(tokio::time::timeout(Duration::from_millis(300), low.next()).await.is_err(), "the low-priority service got the call too");

    // Full-path match only, disabled services are skipped: both 404 with a vCD error.
    let r = get("/api/shared").await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("majorErrorCode=\"404\""));
    assert_eq!(get("/api/off/x").await.unwrap().status(), 404);
    assert_eq!(get("/api/org/x/nothing").await.unwrap().status(), 404);
    // Wrong credentials never reach the extension.
    let r = sim.http.get(sim.url("/api/shared/x")).basic_auth("alice@nowhere", Some("pw")).header("Accept", "application/json;version=37.0").send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn front_door_timeout_bad_reply_and_missing_exchange() {
    let sim = Sim::start(&["--reply-timeout-secs", "1"]).await;
    let (_conn, channel) = amqp_channel().await;
    let exchange = unique("slow");
    let mut consumer = extension_queue(&channel, &exchange, "slow").await;
    let admin = sim.admin_token().await;
    sim.register(&admin, "slow", &exchange, true, 50, &["/api/slow/.*"]).await;
    sim.register(&admin, "ghost", &unique("no-such-exchange"), true, 50, &["/api/ghost/.*"]).await;
    let get = |path: &str| sim.http.get(sim.url(path)).basic_auth("alice@acme", Some("pw")).header("Accept", "application/json;version=37.0").send();

    // No reply: 504 after the timeout.
    let started = std::time::Instant::now();
    let r = get("/api/slow/a").await.unwrap();
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() >= Duration::from_millis(900));
    let _ignored = next_delivery(&mut consumer).await;

    // A reply that is not the reply format: 502 with the reason.
    let call = tokio::spawn(get("/api/slow/b"));
    let delivery = next_delivery(&mut consumer).await;
    reply(&channel, &delivery, json!({"status": 200})).await;
    let r = call.await.unwrap().unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("statusCode"));

    // The extension's exchange does not exist: 502 naming it.
    let r = get("/api/ghost/x").await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("does not exist"));
}

#[tokio::test]
async fn notifications_reach_a_vm_create_binding() {
    let sim = Sim::start(&[]).await;
    let (_conn, channel) = amqp_channel().await;
    let exchange = format!("{}.notifications20", sim.prefix);
    let queue = channel
        .queue_declare("".into(), QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    channel
        .queue_bind(queue.name().clone(), exchange.as_str().into(), "true.#.com.vmware.vcloud.event.vm.create".into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .expect("the sim declared the notifications exchange");
    let mut consumer = channel
        .basic_consume(queue.name().clone(), "".into(), BasicConsumeOptions { no_ack: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();

    let post = |body: Value| sim.http.post(sim.url("/sim/notifications")).json(&body).send();
    // A failed creation and another event type do not match the binding.
    assert_eq!(post(json!({"type": "com/vmware/vcloud/event/vm/create", "org": "acme", "operationSuccess": false})).await.unwrap().status(), 202);
    assert_eq!(post(json!({"type": "com/vmware/vcloud/event/vapp/create", "org": "acme"})).await.unwrap().status(), 202);
    assert_eq!(post(json!({"type": "com/vmware/vcloud/event/vm/create", "org": "nowhere"})).await.unwrap().status(), 400);

    let vm = Uuid::new_v4();
    let acme = org_urn("acme");
    let r = post(json!({"type": "com/vmware/vcloud/event/vm/create", "org": acme, "entity": format!("urn:vcloud:vm:{vm}")})).await.unwrap();
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.unwrap();

    let delivery = next_delivery(&mut consumer).await;
    let org_uuid = acme.rsplit(':').next().unwrap();
    let user_uuid = user_urn("administrator", "System").rsplit(':').next().unwrap().to_string();
    let expected_key = format!("true.{vm}.{org_uuid}.{user_uuid}.com.vmware.vcloud.event.vm.create");
    assert_eq!(delivery.routing_key.as_str(), expected_key);
    assert_eq!(answer["routingKey"], expected_key);
    let props = &delivery.properties;
    assert_eq!(header_str(props, "notification.type"), "com/vmware/vcloud/event/vm/create");
    assert_eq!(header_str(props, "notification.entityType"), "vm");
    assert_eq!(header_str(props, "notification.entityUUID"), vm.to_string());
    assert_eq!(header_str(props, "notification.orgUUID"), org_uuid);
    assert_eq!(header_str(props, "notification.userUUID"), user_uuid);
    assert_eq!(header_str(props, "notification.operationSuccess"), "true");
    assert_eq!(*props.delivery_mode(), Some(2));
    assert_eq!(props.content_type().as_ref().unwrap().as_str(), "application/json");
    let body: Value = serde_json::from_slice(&delivery.data).unwrap();
    assert_eq!(body["eventId"], answer["eventId"]);
    assert_eq!(body["type"], "com/vmware/vcloud/event/vm/create");
    assert_eq!(body["operationSuccess"], true);
    assert_eq!(body["org"], acme);
    assert_eq!(body["entity"], format!("urn:vcloud:vm:{vm}"));
    assert_eq!(body["user"], user_urn("administrator", "System"));
    assert!(time::OffsetDateTime::parse(body["timestamp"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).is_ok());
    // Nothing else matched the binding.
    assert!(tokio::time::timeout(Duration::from_millis(300), consumer.next()).await.is_err());
}

#[tokio::test]
async fn page_and_state_show_orgs_with_their_ids() {
    let sim = Sim::start(&[]).await;
    let state: Value = sim.http.get(sim.url("/sim/state")).send().await.unwrap().json().await.unwrap();
    let orgs = state["orgs"].as_array().unwrap();
    let names: Vec<&str> = orgs.iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["System", "acme", "globex"]);
    assert!(orgs.iter().all(|o| o["id"] == org_urn(o["name"].as_str().unwrap())));
    let page = sim.http.get(sim.url("/")).send().await.unwrap();
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains(&org_urn("acme")) && html.contains("action=\"/sim/notifications\"") && html.contains("curl "));
}
