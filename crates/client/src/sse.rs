//! An incremental parser of the `text/event-stream` wire format (the WHATWG HTML standard's
//! "event stream interpretation"), fed bytes as they arrive.

/// One dispatched event: the fields a browser's `EventSource` would report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseFrame {
    /// `event:`; `message` when the server sent none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// `id:` of this frame, if it carried one.
    pub id: Option<String>,
}

/// Bytes in, frames out; remembers `retry:` and comment lines (keep-alives).
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
    /// The reconnection delay the server asked for, in milliseconds.
    pub retry_ms: Option<u64>,
    /// Comment lines seen (Skein sends them as keep-alives).
    pub comments: u64,
}

impl SseParser {
    /// Appends `bytes` and returns every frame they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseFrame> {
        self.buffer.extend_from_slice(bytes);
        let mut frames = Vec::new();
        // Lines end in \n, \r\n or \r; a lone trailing \r may still become \r\n.
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n' || b == b'\r') {
            if self.buffer[end] == b'\r' && end + 1 == self.buffer.len() {
                break;
            }
            let skip = if self.buffer[end] == b'\r' && self.buffer.get(end + 1) == Some(&b'\n') { 2 } else { 1 };
            let line: Vec<u8> = self.buffer.drain(..end + skip).take(end).collect();
            if let Some(frame) = self.line(&String::from_utf8_lossy(&line)) {
                frames.push(frame);
            }
        }
        frames
    }

    /// Forgets a half-received frame (its connection is gone); `retry:` is kept.
    pub fn discard_partial(&mut self) {
        self.buffer.clear();
        (self.event, self.data, self.id) = (None, None, None);
    }

    fn line(&mut self, line: &str) -> Option<SseFrame> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            self.comments += 1;
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            "retry" => self.retry_ms = value.parse().ok().or(self.retry_ms),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseFrame> {
        let event = self.event.take();
        let id = self.id.take();
        let data = self.data.take()?;
        Some(SseFrame { event: event.unwrap_or_else(|| "message".to_owned()), data, id })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let wire = ": keep-alive\nretry: 2000\r\nevent: thread.new\nid: 42\ndata: {\"a\":\ndata: 1}\n\ndata: é\r\n\r\n";
        for split in 0..wire.len() {
            let mut parser = SseParser::default();
            let (a, b) = wire.as_bytes().split_at(split);
            let mut frames = parser.feed(a);
            frames.extend(parser.feed(b));
            assert_eq!(
                frames,
                vec![
                    SseFrame { event: "thread.new".into(), data: "{\"a\":\n1}".into(), id: Some("42".into()) },
                    SseFrame { event: "message".into(), data: "é".into(), id: None },
                ],
                "split at {split}"
            );
            assert_eq!((parser.retry_ms, parser.comments), (Some(2000), 1));
        }
    }

    #[test]
    fn a_frame_without_data_is_not_dispatched() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b"event: x\nid: 1\n\n").is_empty());
        assert_eq!(parser.feed(b"data: y\n\n")[0].id, None);
    }
}
