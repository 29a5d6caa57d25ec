//! The platform's MQTT API extension in vCD (vcd-mqtt.md §M1): its record under
//! `/cloudapi/extensions/api`, named by vendor, name and version; its extension token, the
//! password of its MQTT connection; and where its API filters live.

use super::api_filters::FilterHost;
use super::rest::VcdClient;
use crate::config::VcdConfig;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// API version from which `/cloudapi/1.0.0/tokens` makes extension tokens (vCD 10.3.1): the
/// least an MQTT extension needs.
pub const MQTT_FROM: (u32, u32) = (36, 1);
/// API version from which `/cloudapi/1.0.0/apiFilters` exists; before, the legacy XML filters
/// of the extension's service uuid serve (the sources disagree: §M1.4 names 37.3 and 38.1).
const CLOUDAPI_FILTERS_FROM: (u32, u32) = (38, 1);

pub struct MqttExtension {
    pub client: Arc<VcdClient>,
    vendor: String,
    name: String,
    version: String,
}

/// The extension as vCD registered it: its URN and the topics of its MQTT traffic.
#[derive(Clone, Debug)]
pub struct ExtensionRecord {
    pub id: String,
    /// vCD → extension: API requests (and behavior invocations).
    pub monitor: String,
    /// Extension → vCD: the answers.
    pub respond: String,
}

/// An extension token and when it expires (`None`: long-lived).
pub struct ExtensionToken {
    pub id: String,
    pub token: String,
    pub expires_at: Option<OffsetDateTime>,
}

/// `"38.1"` → (38, 1).
pub fn parse_version(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
    Some((major.parse().ok()?, minor.split('.').next()?.parse().ok()?))
}

impl MqttExtension {
    pub fn new(settings: &VcdConfig) -> Result<MqttExtension, String> {
        Self::with_client(Arc::new(VcdClient::new(settings)?), settings)
    }

    pub fn with_client(client: Arc<VcdClient>, settings: &VcdConfig) -> Result<MqttExtension, String> {
        let part = |what: &str, value: &str| {
            if value.is_empty() || value.contains(['/', ':', '+', '#', ' ']) {
                Err(format!("{what} {value:?} cannot name an MQTT extension: use letters, digits, '-', '_' or '.'"))
            } else {
                Ok(value.to_string())
            }
        };
        Ok(MqttExtension {
            client,
            vendor: part("VCD_EXTENSION_VENDOR", &settings.vcd_extension_vendor)?,
            name: part("VCD_SERVICE_NAME", &settings.vcd_service_name)?,
            version: part("VCD_EXTENSION_VERSION", &settings.vcd_extension_version)?,
        })
    }

    /// `vendor/name/version`: the MQTT user name, and the name of its tokens.
    pub fn triple(&self) -> String {
        format!("{}/{}/{}", self.vendor, self.name, self.version)
    }

    pub fn urn(&self) -> String {
        format!("urn:vcloud:extension-api:{}:{}:{}", self.vendor, self.name, self.version)
    }

    fn spec(&self, enabled: bool) -> Value {
        json!({"name": self.name, "version": self.version, "vendor": self.vendor, "priority": 50, "enabled": enabled,
               "authorizationEnabled": false, "description": "vcd-faas: functions of the tenants, called through vCD"})
    }

    /// The extension's record, if registered.
    async fn find(&self) -> Result<Option<Value>, String> {
        let all = self.client.list_all("/cloudapi/extensions/api").await?;
        Ok(all.into_iter().find(|e| e["vendor"] == self.vendor.as_str() && e["name"] == self.name.as_str() && e["version"] == self.version.as_str()))
    }

    /// Finds the extension, registering or enabling it when needed.
    pub async fn ensure(&self) -> Result<ExtensionRecord, String> {
        let record = match self.find().await? {
            Some(record) if record["enabled"] == true || record["enabled"] == "true" => record,
            Some(record) => {
                let id = record["id"].as_str().ok_or("vCD's extension record has no id")?.to_string();
                let enabled = self.client.send_json(Method::PUT, &format!("/cloudapi/extensions/api/{id}"), Some(&self.spec(true))).await?;
                tracing::info!(id, "MQTT extension enabled in vCD");
                if enabled.body.is_object() { enabled.body } else { record }
            }
            None => {
                let created = self.client.send_json(Method::POST, "/cloudapi/extensions/api", Some(&self.spec(true))).await?;
                tracing::info!(id = ?created.body["id"], "MQTT extension registered in vCD");
                // Some versions register it disabled whatever the request said (§M1.1).
                if created.body["enabled"] == false {
                    let id = created.body["id"].as_str().ok_or("vCD created the extension without an id")?;
                    self.client.send_json(Method::PUT, &format!("/cloudapi/extensions/api/{id}"), Some(&self.spec(true))).await?;
                }
                created.body
            }
        };
        let id = record["id"].as_str().map(str::to_string).unwrap_or_else(|| self.urn());
        let base = format!("topic/extension/{}", self.triple());
        let topic = |kind: &str, default: String| record.pointer(&format!("/mqttTopics/{kind}")).and_then(Value::as_str).map(str::to_string).unwrap_or(default);
        Ok(ExtensionRecord { id, monitor: topic("monitor", format!("{base}/ext")), respond: topic("respond", format!("{base}/vcd")) })
    }

    /// Where this extension's filters live in the vCD spoken to.
    pub async fn filter_host(&self, record: &ExtensionRecord) -> Result<FilterHost, String> {
        let version = self.client.api_version().await?;
        if parse_version(&version).is_some_and(|v| v >= CLOUDAPI_FILTERS_FROM) {
            return Ok(FilterHost::CloudApi { extension_id: record.id.clone(), name: self.name.clone() });
        }
        // Older: the legacy service uuid, from the record's Link headers.
        let answer = self.client.send_json(Method::GET, &format!("/cloudapi/extensions/api/{}", record.id), None).await?;
        let uuid = answer
            .links
            .iter()
            .find_map(|link| legacy_service_uuid(link))
            .ok_or("vCD's extension record links no /api/admin/extension/service/<uuid> for its legacy API filters")?;
        Ok(FilterHost::Legacy { service_href: format!("/api/admin/extension/service/{uuid}") })
    }

    /// A new extension token; the extension's other tokens but `keep` (the one a connection
    /// still uses) are deleted: vCD shows a token only when it is made, so an old one is of no
    /// use once no connection uses it.
    pub async fn new_token(&self, record: &ExtensionRecord, keep: Option<&str>) -> Result<ExtensionToken, String> {
        let body = json!({"name": self.triple(), "type": "EXTENSION", "extensionId": record.id});
        let created = self.client.send_json(Method::POST, "/cloudapi/1.0.0/tokens", Some(&body)).await?.body;
        let token = created["token"].as_str().ok_or("vCD made the extension token but did not show it")?.to_string();
        let expires_at = match created["expirationTimeUtc"].as_str() {
            Some(text) => Some(OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("the token's expirationTimeUtc {text:?}: {e}"))?),
            None => None,
        };
        let id = created["id"].as_str().unwrap_or_default().to_string();
        if let Err(e) = self.delete_tokens_except(&[id.as_str(), keep.unwrap_or_default()]).await {
            tracing::warn!(error = e, "older extension tokens could not be deleted");
        }
        Ok(ExtensionToken { id, token, expires_at })
    }

    async fn delete_tokens_except(&self, keep: &[&str]) -> Result<(), String> {
        for token in self.client.list_all("/cloudapi/1.0.0/tokens").await? {
            let id = token["id"].as_str().unwrap_or_default();
            let ours = token["type"] == "EXTENSION" && token.pointer("/owner/name").and_then(Value::as_str) == Some(&self.triple());
            if ours && !keep.contains(&id) && !id.is_empty() {
                self.client.send_json(Method::DELETE, &format!("/cloudapi/1.0.0/tokens/{id}"), None).await?;
            }
        }
        Ok(())
    }

    /// Disables and deletes the extension (its filters and tokens go with it); false when there was none.
    pub async fn unregister(&self) -> Result<bool, String> {
        let Some(record) = self.find().await? else { return Ok(false) };
        let id = record["id"].as_str().ok_or("vCD's extension record has no id")?.to_string();
        let path = format!("/cloudapi/extensions/api/{id}");
        if record["enabled"] != false {
            self.client.send_json(Method::PUT, &path, Some(&self.spec(false))).await?;
        }
        self.client.send_json(Method::DELETE, &path, None).await?;
        Ok(true)
    }
}

/// The uuid in a `Link: <…/api/admin/extension/service/<uuid>/…>` header.
fn legacy_service_uuid(link: &str) -> Option<String> {
    let rest = &link[link.find("/api/admin/extension/service/")? + "/api/admin/extension/service/".len()..];
    let uuid: String = rest.chars().take_while(|c| c.is_ascii_hexdigit() || *c == '-').collect();
    (uuid.len() == 36).then_some(uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(parse_version("38.1"), Some((38, 1)));
        assert_eq!(parse_version("39"), Some((39, 0)));
        assert!(parse_version("37.3").unwrap() < CLOUDAPI_FILTERS_FROM);
        assert!(parse_version("36.10").unwrap() >= MQTT_FROM);
    }

    #[test]
    fn finds_the_legacy_uuid_in_a_link_header() {
        let link = "<https://vcd/api/admin/extension/service/5c6b2f6e-1111-2222-3333-444455556666/apifilters>;rel=\"down\"";
        assert_eq!(legacy_service_uuid(link).as_deref(), Some("5c6b2f6e-1111-2222-3333-444455556666"));
        assert_eq!(legacy_service_uuid("<https://vcd/cloudapi/x>"), None);
    }
}
