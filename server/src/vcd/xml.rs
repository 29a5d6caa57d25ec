//! The few XML documents of vCD's legacy extension API that the platform writes and reads
//! (vcd-protocol.md §1.2–1.3). vCD validates request bodies against its schema, so elements are
//! written in the schema's order.

use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::Reader;
use std::collections::HashMap;

pub const VMEXT: &str = "http://www.vmware.com/vcloud/extension/v1.5";
pub const VCLOUD: &str = "http://www.vmware.com/vcloud/v1.5";

/// What the platform sets on its extension service.
pub struct ServiceSpec<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub enabled: bool,
    pub routing_key: &'a str,
    pub exchange: &'a str,
}

/// A `vmext:Service` body, children in `AdminServiceType` order.
pub fn service(spec: &ServiceSpec) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <vmext:Service xmlns=\"{VCLOUD}\" xmlns:vmext=\"{VMEXT}\" name=\"{name}\">\
         <Description>Functions as a Service: tenant functions under /api/org/{{org}}/{{name}}</Description>\
         <vmext:Namespace>{namespace}</vmext:Namespace>\
         <vmext:Enabled>{enabled}</vmext:Enabled>\
         <vmext:AuthorizationEnabled>false</vmext:AuthorizationEnabled>\
         <vmext:RoutingKey>{routing_key}</vmext:RoutingKey>\
         <vmext:Priority>50</vmext:Priority>\
         <vmext:Exchange>{exchange}</vmext:Exchange>\
         <vmext:Vendor>vcd-faas</vmext:Vendor>\
         </vmext:Service>",
        name = escape(spec.name),
        namespace = escape(spec.namespace),
        enabled = spec.enabled,
        routing_key = escape(spec.routing_key),
        exchange = escape(spec.exchange),
    )
}

/// A `vmext:ApiFilter` body with one URL pattern.
pub fn api_filter(url_pattern: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <vmext:ApiFilter xmlns=\"{VCLOUD}\" xmlns:vmext=\"{VMEXT}\"><vmext:UrlPattern>{}</vmext:UrlPattern></vmext:ApiFilter>",
        escape(url_pattern)
    )
}

/// The attributes of every element named `element` (local name), e.g. the
/// `AdminServiceRecord`s of a query result.
pub fn records(xml: &str, element: &str) -> Result<Vec<HashMap<String, String>>, String> {
    let mut reader = Reader::from_str(xml);
    let mut found = Vec::new();
    loop {
        match reader.read_event().map_err(|e| format!("unreadable XML from vCD: {e}"))? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == element.as_bytes() => {
                let mut attributes = HashMap::new();
                for attribute in e.attributes().flatten() {
                    let key = String::from_utf8_lossy(attribute.key.local_name().as_ref()).to_string();
                    let value = attribute.unescape_value().map_err(|e| format!("unreadable XML from vCD: {e}"))?;
                    attributes.insert(key, value.to_string());
                }
                found.push(attributes);
            }
            Event::Eof => return Ok(found),
            _ => {}
        }
    }
}

/// The text of every element named `element` (local name), e.g. each `Version`.
pub fn texts(xml: &str, element: &str) -> Result<Vec<String>, String> {
    let mut reader = Reader::from_str(xml);
    let mut inside = false;
    let mut found = Vec::new();
    loop {
        match reader.read_event().map_err(|e| format!("unreadable XML from vCD: {e}"))? {
            Event::Start(e) => inside = e.local_name().as_ref() == element.as_bytes(),
            Event::Text(t) if inside => {
                found.push(t.xml_content().map_err(|e| format!("unreadable XML from vCD: {e}"))?.trim().to_string())
            }
            Event::End(_) => inside = false,
            Event::Eof => return Ok(found),
            _ => {}
        }
    }
}

/// vCD's explanation in an `Error` document, if the body is one.
pub fn error_message(xml: &str) -> Option<String> {
    records(xml, "Error").ok()?.into_iter().next()?.remove("message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_children_keep_schema_order() {
        let xml = service(&ServiceSpec { name: "n", namespace: "ns", enabled: true, routing_key: "rk", exchange: "ex<" });
        let order = ["Description", "Namespace", "Enabled", "AuthorizationEnabled", "RoutingKey", "Priority", "Exchange", "Vendor"];
        let positions: Vec<usize> = order.iter().map(|e| xml.find(&format!(":{e}>")).or(xml.find(&format!("<{e}>"))).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{xml}");
        assert!(xml.contains("ex&lt;"));
    }

    #[test]
    fn reads_records_versions_and_errors() {
        let query = r#"<QueryResultRecords xmlns="http://www.vmware.com/vcloud/v1.5"><AdminServiceRecord name="a" namespace="b" enabled="false" href="https://v/api/admin/extension/service/1"/></QueryResultRecords>"#;
        let found = records(query, "AdminServiceRecord").unwrap();
        assert_eq!(found[0]["href"], "https://v/api/admin/extension/service/1");
        let versions = r#"<SupportedVersions><VersionInfo><Version>36.0</Version><LoginUrl>x</LoginUrl></VersionInfo><VersionInfo><Version>37.0</Version></VersionInfo></SupportedVersions>"#;
        assert_eq!(texts(versions, "Version").unwrap(), ["36.0", "37.0"]);
        assert_eq!(error_message(r#"<Error majorErrorCode="400" message="disable first"/>"#).as_deref(), Some("disable first"));
    }
}
