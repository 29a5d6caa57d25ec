//! Bodies in JSON: text as it is, anything else as base64 with a flag saying so. The runtime's
//! envelope, stored async requests and answers, and vCD's messages all carry bodies this way.

use base64::Engine as _;
use std::borrow::Cow;

/// The body as text when it is UTF-8, else base64; the flag is true for base64.
pub fn text_or_base64(body: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(body) {
        Ok(text) => (Cow::Borrowed(text), false),
        Err(_) => (Cow::Owned(encode(body)), true),
    }
}

pub fn encode(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(body)
}

pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text_and_bytes_go_as_base64() {
        assert_eq!(text_or_base64(b"h\xc3\xa9"), (Cow::Borrowed("hé"), false));
        let (coded, is_base64) = text_or_base64(&[0xff, 0x00]);
        assert!(is_base64);
        assert_eq!(decode(&coded).unwrap(), [0xff, 0x00]);
    }
}
