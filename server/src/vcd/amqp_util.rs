//! Small helpers over lapin's message properties.

use lapin::types::AMQPValue;
use lapin::BasicProperties;

/// A text header of a message (vCD sends long strings; short ones are accepted too).
pub fn header_text(properties: &BasicProperties, name: &str) -> Option<String> {
    let headers = properties.headers().as_ref()?;
    match headers.inner().iter().find(|(k, _)| k.as_str() == name)?.1 {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        AMQPValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}
