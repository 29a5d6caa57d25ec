//! An extension's API filters in vCD, through either API vCD offers: the legacy XML
//! `…/extension/service/<uuid>/apifilters` (every version, the only one for an AMQP service)
//! and `/cloudapi/1.0.0/apiFilters` (JSON, from API 38.1, for an MQTT extension).

use super::rest::VcdClient;
use super::xml;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;

const FILTER_TYPE: &str = "application/vnd.vmware.admin.apiFilter+xml";
/// Filters read per page of the cloudapi list.
const PAGE_SIZE: usize = 128;

/// Where an extension's filters live.
pub enum FilterHost {
    /// The legacy service record: `…/api/admin/extension/service/<uuid>` (its href).
    Legacy { service_href: String },
    /// The cloudapi, filters of the extension with this URN and name.
    CloudApi { extension_id: String, name: String },
}

impl FilterHost {
    /// The extension's filters: URL pattern → what deleting one needs (href or id).
    pub async fn list(&self, client: &VcdClient) -> Result<HashMap<String, String>, String> {
        match self {
            FilterHost::Legacy { service_href } => {
                let answer = client.send(Method::GET, &format!("{service_href}/apifilters"), None).await?;
                Ok(xml::records(&answer.body, "ApiFilterRecord")?
                    .into_iter()
                    .filter_map(|mut r| Some((r.remove("urlPattern")?, r.remove("href")?)))
                    .collect())
            }
            FilterHost::CloudApi { extension_id, .. } => {
                let mut filters = HashMap::new();
                for page in 1.. {
                    let query: String = form_urlencoded::Serializer::new(String::new())
                        .append_pair("filter", &format!("externalSystem.id=={extension_id}"))
                        .append_pair("page", &page.to_string())
                        .append_pair("pageSize", &PAGE_SIZE.to_string())
                        .finish();
                    let answer = client.send_json(Method::GET, &format!("/cloudapi/1.0.0/apiFilters?{query}"), None).await?;
                    let values = answer.body["values"].as_array().cloned().unwrap_or_default();
                    for filter in &values {
                        // vCD filters already; checking again keeps a lax filter from taking others' filters.
                        let ours = filter.pointer("/externalSystem/id").and_then(Value::as_str).is_none_or(|id| id == extension_id);
                        let pattern = filter.pointer("/urlMatcher/urlPattern").and_then(Value::as_str);
                        if let (true, Some(pattern), Some(id)) = (ours, pattern, filter["id"].as_str()) {
                            filters.insert(pattern.to_string(), id.to_string());
                        }
                    }
                    let pages = answer.body["pageCount"].as_u64().unwrap_or(1);
                    if values.len() < PAGE_SIZE || page >= pages {
                        break;
                    }
                }
                Ok(filters)
            }
        }
    }

    pub async fn add(&self, client: &VcdClient, pattern: &str) -> Result<(), String> {
        match self {
            FilterHost::Legacy { service_href } => client
                .send(Method::POST, &format!("{service_href}/apifilters"), Some((FILTER_TYPE, xml::api_filter(pattern))))
                .await
                .map(|_| ()),
            FilterHost::CloudApi { extension_id, name } => {
                // An MQTT extension may filter only `API` URLs (paths under /api).
                let body = json!({"externalSystem": {"id": extension_id, "name": name},
                                  "urlMatcher": {"urlPattern": pattern, "urlScope": "API"}});
                client.send_json(Method::POST, "/cloudapi/1.0.0/apiFilters", Some(&body)).await.map(|_| ())
            }
        }
    }

    /// Deletes a filter by what `list` gave for it.
    pub async fn remove(&self, client: &VcdClient, handle: &str) -> Result<(), String> {
        match self {
            FilterHost::Legacy { .. } => client.send(Method::DELETE, handle, None).await.map(|_| ()),
            FilterHost::CloudApi { .. } => {
                client.send_json(Method::DELETE, &format!("/cloudapi/1.0.0/apiFilters/{handle}"), None).await.map(|_| ())
            }
        }
    }
}
