//! Server-sent events read from a byte stream that arrives in arbitrary pieces.

#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    /// `message` when the event names none.
    pub name: String,
    pub data: String,
}

#[derive(Default)]
pub struct SseReader {
    /// Bytes of a line not ended yet.
    partial: Vec<u8>,
    name: Option<String>,
    data: Vec<String>,
}

impl SseReader {
    /// Takes the next piece of the stream; returns the events it completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.partial.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if let Some(event) = self.line(line) {
                events.push(event);
            }
        }
        events
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            // A blank line ends an event; one with no data is none (a keep-alive's end, say).
            let name = self.name.take().unwrap_or_else(|| "message".into());
            if self.data.is_empty() {
                return None;
            }
            return Some(Event { name, data: std::mem::take(&mut self.data).join("\n") });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_are_put_back_together() {
        let stream = b": keep-alive\n\nevent: call\ndata: {\"a\":1}\n\nevent: call\r\ndata: x\r\ndata: y\r\n\r\n";
        for piece in [1, 3, 7, stream.len()] {
            let mut reader = SseReader::default();
            let events: Vec<Event> = stream.chunks(piece).flat_map(|c| reader.feed(c)).collect();
            assert_eq!(
                events,
                vec![Event { name: "call".into(), data: "{\"a\":1}".into() }, Event { name: "call".into(), data: "x\ny".into() }],
                "pieces of {piece}"
            );
        }
    }
}
