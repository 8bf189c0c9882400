//! Splits a byte stream into lines.

use bytes::BytesMut;

/// One unit the decoder yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its LF and without a CR right before the LF.
    Line(BytesMut),
    /// A line longer than the limit ended here; its bytes were discarded.
    TooLong,
}

/// Incremental line decoder.
#[derive(Debug)]
pub struct LineDecoder {
    max_line_bytes: usize,
}

impl LineDecoder {
    /// A decoder that refuses lines longer than `max_line_bytes` (bytes before the LF).
    pub fn new(max_line_bytes: usize) -> Self {
        LineDecoder { max_line_bytes }
    }

    /// Takes the next frame out of `buf`, or `None` when `buf` holds no complete line yet.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        let _ = (buf, self.max_line_bytes);
        todo!("helper implements")
    }
}
