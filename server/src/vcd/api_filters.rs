//! An extension's API filters in vCD, through either API vCD offers: the legacy XML
//! `…/extension/service/<uuid>/apifilters` (every version, the only one for an AMQP service)
//! and `/cloudapi/1.0.0/apiFilters` (JSON, from API 38.1, for an MQTT extension).

use super::rest::VcdClient;
use super::xml;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;

const FILTER_TYPE: &str = "application/vnd.vmware.admin.apiFilter+xml";

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
            FilterHost::CloudApi { extension_id, .. } => Ok(client
                .list_all("/cloudapi/1.0.0/apiFilters")
                .await?
                .iter()
                .filter(|f| f.pointer("/externalSystem/id").and_then(Value::as_str) == Some(extension_id.as_str()))
                .filter_map(|f| {
                    let pattern = f.pointer("/urlMatcher/urlPattern").and_then(Value::as_str)?;
                    Some((pattern.to_string(), f["id"].as_str()?.to_string()))
                })
                .collect()),
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
