//! vCD's XML: a small namespace-aware reader (quick-xml) that checks request bodies the way vCD's
//! XSD validation would (element order, namespaces, required children), and the writers for the
//! documents the sim answers with.

use quick_xml::escape::{escape, unescape};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::state::{Filter, Service, ServiceSpec};

pub const VCLOUD_NS: &str = "http://www.vmware.com/vcloud/v1.5";
pub const VMEXT_NS: &str = "http://www.vmware.com/vcloud/extension/v1.5";
pub const VERSIONS_NS: &str = "http://www.vmware.com/vcloud/versions";

/// One element of a parsed document.
#[derive(Debug, Default)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn qname(&self) -> String {
        format!("{{{}}}{}", self.ns, self.name)
    }
}

/// Parses a whole document into a tree; namespaces are resolved, attribute names are local.
pub fn parse(body: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(body);
    let mut stack: Vec<Element> = Vec::new();
    // Text arrives in pieces split at entity references; keep it raw and unescape at the end tag.
    let mut raw_text: Vec<String> = vec![];
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(|e| format!("malformed XML: {e}"))?;
        let ns = match resolved {
            ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let mut el = Element {
                    ns,
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Default::default()
                };
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| format!("malformed XML attribute: {e}"))?;
                    let key = attr.key;
                    if key.as_ref().starts_with(b"xmlns") {
                        continue;
                    }
                    let value = attr.unescape_value().map_err(|e| format!("malformed XML attribute: {e}"))?;
                    el.attrs.push((String::from_utf8_lossy(key.local_name().as_ref()).into_owned(), value.into_owned()));
                }
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => return Ok(el),
                    }
                } else {
                    stack.push(el);
                    raw_text.push(String::new());
                }
            }
            Event::Text(t) => {
                if let Some(buf) = raw_text.last_mut() {
                    buf.push_str(&t.decode().map_err(|e| format!("bad text encoding: {e}"))?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(buf) = raw_text.last_mut() {
                    buf.push_str(&format!("&{};", r.decode().map_err(|e| format!("bad entity: {e}"))?));
                }
            }
            Event::CData(c) => {
                if let Some(buf) = raw_text.last_mut() {
                    // Escape so that the final unescape gives the CDATA content back unchanged.
                    buf.push_str(&escape(c.decode().map_err(|e| format!("bad CDATA: {e}"))?.as_ref()));
                }
            }
            Event::End(_) => {
                let mut el = stack.pop().ok_or("unbalanced end tag")?;
                let raw = raw_text.pop().unwrap_or_default();
                el.text = unescape(&raw).map_err(|e| format!("bad entity in text: {e}"))?.trim().to_string();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Eof => return Err("the XML document ends before its root element is closed".into()),
            _ => {}
        }
    }
}

/// One child the schema allows at this point of a sequence.
struct Slot {
    ns: &'static str,
    name: &'static str,
    required: bool,
    repeat: bool,
}

const fn slot(ns: &'static str, name: &'static str, required: bool, repeat: bool) -> Slot {
    Slot { ns, name, required, repeat }
}

fn label(ns: &str, name: &str) -> String {
    match ns {
        VCLOUD_NS => format!("vcloud:{name}"),
        VMEXT_NS => format!("vmext:{name}"),
        "" => format!("{name} (no namespace)"),
        other => format!("{{{other}}}{name}"),
    }
}

/// Walks the children against an XSD `sequence`, like vCD's schema validation, and returns for
/// each slot the children that filled it. Errors name the element and what was expected.
fn match_sequence<'a>(parent: &'a Element, slots: &[Slot]) -> Result<Vec<Vec<&'a Element>>, String> {
    let mut filled: Vec<Vec<&Element>> = slots.iter().map(|_| vec![]).collect();
    let mut pos = 0;
    for child in &parent.children {
        let found = (pos..slots.len()).find(|&i| slots[i].ns == child.ns && slots[i].name == child.name);
        let Some(i) = found else {
            let before = slots.iter().position(|s| s.ns == child.ns && s.name == child.name);
            let parent_label = label(&parent.ns, &parent.name);
            return Err(match before {
                Some(_) => format!(
                    "{} is out of order in {parent_label}: children must follow the schema order {}",
                    label(&child.ns, &child.name),
                    slots.iter().map(|s| label(s.ns, s.name)).collect::<Vec<_>>().join(", ")
                ),
                None => format!(
                    "unexpected element {} in {parent_label}; allowed: {}",
                    label(&child.ns, &child.name),
                    slots.iter().map(|s| label(s.ns, s.name)).collect::<Vec<_>>().join(", ")
                ),
            });
        };
        // The same element again where it may not repeat is also a schema error.
        if i == pos && !slots[i].repeat && !filled[i].is_empty() {
            return Err(format!("{} appears twice in {}", label(&child.ns, &child.name), label(&parent.ns, &parent.name)));
        }
        for j in pos..i {
            if slots[j].required && filled[j].is_empty() {
                return Err(format!(
                    "{} is missing (or comes after {}) in {}",
                    label(slots[j].ns, slots[j].name),
                    label(&child.ns, &child.name),
                    label(&parent.ns, &parent.name)
                ));
            }
        }
        filled[i].push(child);
        pos = i;
    }
    for (i, s) in slots.iter().enumerate() {
        if s.required && filled[i].is_empty() {
            return Err(format!("required element {} is missing in {}", label(s.ns, s.name), label(&parent.ns, &parent.name)));
        }
    }
    Ok(filled)
}

fn parse_bool(el: &Element) -> Result<bool, String> {
    match el.text.as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!("{} must be true or false, not '{other}'", label(&el.ns, &el.name))),
    }
}

fn non_empty(el: &Element) -> Result<String, String> {
    if el.text.is_empty() {
        return Err(format!("{} must not be empty", label(&el.ns, &el.name)));
    }
    Ok(el.text.clone())
}

fn expect_root(root: &Element, ns: &'static str, name: &'static str) -> Result<(), String> {
    if root.ns != ns || root.name != name {
        return Err(format!("the body must be a {} element, not {}", label(ns, name), label(&root.ns, &root.name)));
    }
    Ok(())
}

/// A `vmext:Service` body (services.xsd `AdminServiceType`, which extends `vcloud:EntityType`):
/// the spec and the UrlPatterns of its ApiFilters.
pub fn parse_service(body: &str) -> Result<(ServiceSpec, Vec<String>), String> {
    let root = parse(body)?;
    expect_root(&root, VMEXT_NS, "Service")?;
    let name = root.attr("name").filter(|n| !n.is_empty()).ok_or("the Service element needs a non-empty name attribute")?;
    let slots = [
        // Inherited from vcloud:ResourceType / EntityType; a GET-modify-PUT client sends them back.
        slot(VCLOUD_NS, "Link", false, true),
        slot(VCLOUD_NS, "Description", false, false),
        slot(VCLOUD_NS, "Tasks", false, false),
        slot(VMEXT_NS, "Namespace", true, false),
        slot(VMEXT_NS, "Enabled", false, false),
        slot(VMEXT_NS, "AuthorizationEnabled", false, false),
        slot(VMEXT_NS, "RoutingKey", true, false),
        slot(VMEXT_NS, "Priority", false, false),
        slot(VMEXT_NS, "Exchange", true, false),
        slot(VMEXT_NS, "Vendor", false, false),
        slot(VMEXT_NS, "ApiFilters", false, false),
        slot(VMEXT_NS, "ServiceLinks", false, false),
        slot(VMEXT_NS, "ApiDefinitions", false, false),
        slot(VMEXT_NS, "ResourceClasses", false, false),
    ];
    let f = match_sequence(&root, &slots)?;
    let one = |i: usize| f[i].first().copied();
    let priority = match one(7) {
        None => 50,
        Some(el) => {
            let p: i32 = el.text.parse().map_err(|_| format!("vmext:Priority must be an integer, not '{}'", el.text))?;
            if !(0..=100).contains(&p) {
                return Err(format!("vmext:Priority must be between 0 and 100, not {p}"));
            }
            p
        }
    };
    let spec = ServiceSpec {
        name: name.to_string(),
        description: one(1).map(|d| d.text.clone()),
        namespace: non_empty(one(3).unwrap())?,
        enabled: one(4).map(parse_bool).transpose()?.unwrap_or(false),
        authorization_enabled: one(5).map(parse_bool).transpose()?.unwrap_or(false),
        routing_key: non_empty(one(6).unwrap())?,
        priority,
        exchange: non_empty(one(8).unwrap())?,
        vendor: one(9).map(|v| v.text.clone()),
    };
    let mut patterns = vec![];
    if let Some(filters) = one(10) {
        let fslots = [slot(VMEXT_NS, "ApiFilter", false, true)];
        for filter in match_sequence(filters, &fslots)?.remove(0) {
            patterns.push(parse_filter_element(filter)?);
        }
    }
    Ok((spec, patterns))
}

/// A `vmext:ApiFilter` body: its UrlPattern.
pub fn parse_api_filter(body: &str) -> Result<String, String> {
    let root = parse(body)?;
    expect_root(&root, VMEXT_NS, "ApiFilter")?;
    parse_filter_element(&root)
}

fn parse_filter_element(el: &Element) -> Result<String, String> {
    let slots = [
        slot(VCLOUD_NS, "Link", false, true),
        slot(VMEXT_NS, "UrlPattern", false, false),
        slot(VMEXT_NS, "ResponseContentType", false, false),
    ];
    let f = match_sequence(el, &slots)?;
    match (f[1].first(), f[2].first()) {
        (Some(p), None) => non_empty(p),
        (None, Some(_)) => Err("vcd-sim supports only UrlPattern API filters, not ResponseContentType".into()),
        (Some(_), Some(_)) => Err("an ApiFilter has either a UrlPattern or a ResponseContentType, never both".into()),
        (None, None) => Err(format!("{} needs a vmext:UrlPattern", el.qname())),
    }
}

pub const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

fn e(s: &str) -> std::borrow::Cow<'_, str> {
    escape(s)
}

pub fn service_href(base: &str, service: &Service) -> String {
    format!("{base}/api/admin/extension/service/{}", service.uuid)
}

pub fn service_urn(service: &Service) -> String {
    format!("urn:vcloud:externalService:{}", service.uuid)
}

pub fn filter_href(base: &str, filter: &Filter) -> String {
    format!("{base}/api/admin/extension/service/apifilter/{}", filter.id)
}

pub fn filter_urn(filter: &Filter) -> String {
    format!("urn:vcloud:apiFilter:{}", filter.id)
}

fn filter_inner(base: &str, f: &Filter, prefix: &str) -> String {
    format!(
        "<{prefix}ApiFilter href=\"{href}\" id=\"{id}\" type=\"application/vnd.vmware.admin.apiFilter+xml\">\
         <Link rel=\"remove\" href=\"{href}\"/>\
         <{prefix}UrlPattern>{pattern}</{prefix}UrlPattern></{prefix}ApiFilter>",
        href = e(&filter_href(base, f)),
        id = filter_urn(f),
        pattern = e(&f.url_pattern),
    )
}

/// The `vmext:Service` document (fields in schema order, so a client may PUT it back).
pub fn service_xml(base: &str, s: &Service, filters: &[Filter]) -> String {
    let href = e(&service_href(base, s)).into_owned();
    let mut out = format!(
        "{DECL}<vmext:Service xmlns=\"{VCLOUD_NS}\" xmlns:vmext=\"{VMEXT_NS}\" name=\"{name}\" id=\"{id}\" href=\"{href}\" \
         type=\"application/vnd.vmware.admin.service+xml\">\
         <Link rel=\"edit\" href=\"{href}\" type=\"application/vnd.vmware.admin.service+xml\"/>\
         <Link rel=\"remove\" href=\"{href}\"/>\
         <Link rel=\"down\" href=\"{href}/apifilters\" type=\"application/vnd.vmware.vcloud.query.records+xml\"/>",
        name = e(&s.spec.name),
        id = service_urn(s),
    );
    if let Some(d) = &s.spec.description {
        out.push_str(&format!("<Description>{}</Description>", e(d)));
    }
    out.push_str(&format!(
        "<vmext:Namespace>{}</vmext:Namespace><vmext:Enabled>{}</vmext:Enabled>\
         <vmext:AuthorizationEnabled>{}</vmext:AuthorizationEnabled><vmext:RoutingKey>{}</vmext:RoutingKey>\
         <vmext:Priority>{}</vmext:Priority><vmext:Exchange>{}</vmext:Exchange>",
        e(&s.spec.namespace),
        s.spec.enabled,
        s.spec.authorization_enabled,
        e(&s.spec.routing_key),
        s.spec.priority,
        e(&s.spec.exchange),
    ));
    if let Some(v) = &s.spec.vendor {
        out.push_str(&format!("<vmext:Vendor>{}</vmext:Vendor>", e(v)));
    }
    if !filters.is_empty() {
        out.push_str("<vmext:ApiFilters>");
        for f in filters {
            out.push_str(&filter_inner(base, f, "vmext:"));
        }
        out.push_str("</vmext:ApiFilters>");
    }
    out.push_str("</vmext:Service>");
    out
}

pub fn api_filter_xml(base: &str, f: &Filter) -> String {
    let inner = filter_inner(base, f, "vmext:");
    // Put the namespace declarations on the root element.
    let inner = inner.replacen("<vmext:ApiFilter ", &format!("<vmext:ApiFilter xmlns=\"{VCLOUD_NS}\" xmlns:vmext=\"{VMEXT_NS}\" "), 1);
    format!("{DECL}{inner}")
}

/// `QueryResultRecords` around ready-made record elements.
pub fn query_records(href: &str, name: &str, records: &[String]) -> String {
    format!(
        "{DECL}<QueryResultRecords xmlns=\"{VCLOUD_NS}\" name=\"{name}\" page=\"1\" pageSize=\"{size}\" total=\"{total}\" \
         href=\"{href}\" type=\"application/vnd.vmware.vcloud.query.records+xml\">{body}</QueryResultRecords>",
        size = records.len().max(25),
        total = records.len(),
        href = e(href),
        body = records.concat(),
    )
}

pub fn admin_service_record(base: &str, s: &Service) -> String {
    format!(
        "<AdminServiceRecord name=\"{}\" namespace=\"{}\" enabled=\"{}\" exchange=\"{}\" routingKey=\"{}\" priority=\"{}\" \
         isAuthorizationEnabled=\"{}\" href=\"{}\" id=\"{}\"/>",
        e(&s.spec.name),
        e(&s.spec.namespace),
        s.spec.enabled,
        e(&s.spec.exchange),
        e(&s.spec.routing_key),
        s.spec.priority,
        s.spec.authorization_enabled,
        e(&service_href(base, s)),
        service_urn(s),
    )
}

pub fn api_filter_record(base: &str, f: &Filter) -> String {
    format!(
        "<ApiFilterRecord urlPattern=\"{}\" href=\"{}\" id=\"{}\" service=\"urn:vcloud:externalService:{}\"/>",
        e(&f.url_pattern),
        e(&filter_href(base, f)),
        filter_urn(f),
        f.service,
    )
}

pub fn versions_xml(base: &str, versions: &[String]) -> String {
    let infos: String = versions
        .iter()
        .map(|v| {
            format!(
                "<VersionInfo deprecated=\"false\"><Version>{}</Version><LoginUrl>{}/api/sessions</LoginUrl></VersionInfo>",
                e(v),
                e(base)
            )
        })
        .collect();
    format!("{DECL}<SupportedVersions xmlns=\"{VERSIONS_NS}\">{infos}</SupportedVersions>")
}

pub fn session_xml(base: &str, user: &str, org: &str, user_urn: &str, org_urn: &str) -> String {
    format!(
        "{DECL}<Session xmlns=\"{VCLOUD_NS}\" user=\"{}\" org=\"{}\" userId=\"{}\" href=\"{}/api/session\" \
         type=\"application/vnd.vmware.vcloud.session+xml\">\
         <Link rel=\"down\" href=\"{}/api/org/\" type=\"application/vnd.vmware.vcloud.orgList+xml\"/>\
         <Link rel=\"remove\" href=\"{}/api/session\"/>\
         <Link rel=\"down\" href=\"{}/api/admin/extension\" type=\"application/vnd.vmware.admin.vmwExtension+xml\"/>\
         <AuthorizedLocations/><!-- org {} --></Session>",
        e(user),
        e(org),
        user_urn,
        e(base),
        e(base),
        e(base),
        e(base),
        org_urn,
    )
}

pub fn error_xml(status: u16, minor: &str, message: &str) -> String {
    format!(
        "{DECL}<Error xmlns=\"{VCLOUD_NS}\" majorErrorCode=\"{status}\" minorErrorCode=\"{}\" message=\"{}\"/>",
        e(minor),
        e(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_body(children: &str) -> String {
        format!("<vmext:Service xmlns=\"{VCLOUD_NS}\" xmlns:vmext=\"{VMEXT_NS}\" name=\"fn\">{children}</vmext:Service>")
    }

    #[test]
    fn accepts_schema_order_and_reads_fields() {
        let body = service_body(
            "<Description>d &amp; e</Description><vmext:Namespace>ns</vmext:Namespace><vmext:Enabled>true</vmext:Enabled>\
             <vmext:RoutingKey>rk</vmext:RoutingKey><vmext:Exchange>ex</vmext:Exchange>\
             <vmext:ApiFilters><vmext:ApiFilter><vmext:UrlPattern>/api/a/.*</vmext:UrlPattern></vmext:ApiFilter></vmext:ApiFilters>",
        );
        let (spec, patterns) = parse_service(&body).unwrap();
        assert_eq!(spec.description.as_deref(), Some("d & e"));
        assert!(spec.enabled);
        assert_eq!(spec.priority, 50);
        assert_eq!(patterns, vec!["/api/a/.*"]);
    }

    #[test]
    fn refuses_out_of_order_and_missing() {
        let body = service_body(
            "<vmext:Namespace>ns</vmext:Namespace><vmext:RoutingKey>rk</vmext:RoutingKey><vmext:Enabled>true</vmext:Enabled><vmext:Exchange>ex</vmext:Exchange>",
        );
        let err = parse_service(&body).unwrap_err();
        assert!(err.contains("vmext:Enabled is out of order"), "{err}");
        let body = service_body("<vmext:Namespace>ns</vmext:Namespace><vmext:RoutingKey>rk</vmext:RoutingKey>");
        let err = parse_service(&body).unwrap_err();
        assert!(err.contains("vmext:Exchange is missing"), "{err}");
        let body = service_body("<vmext:Description>x</vmext:Description><vmext:Namespace>ns</vmext:Namespace>");
        assert!(parse_service(&body).unwrap_err().contains("unexpected element vmext:Description"));
    }
}
