//! Arbitrary bytes through `LineDecoder` in arbitrary chunks, each line
//! through `parse_line`.
//!
//! Checks: nothing panics; decoding in chunks gives the frames (and so the
//! commands) of decoding the whole input at once; every parsed command
//! re-encodes to a line that parses back to the same command and whose
//! first word is its verb; every error reply reads back as itself (CR and
//! LF of its text aside: the wire has spaces there).
//!
//! Input layout: the first byte says how many of the next bytes are chunk
//! sizes (1 to 8); the rest is the stream, cut by those sizes in turn.

use bytes::BytesMut;
use herald_proto::{Frame, LineDecoder, Reply, Verb, parse_line};

/// Small, so that overlong lines are common.
const MAX_LINE_BYTES: usize = 512;

fn decode(stream: &[u8], sizes: &[u8]) -> Vec<Frame> {
    let mut decoder = LineDecoder::new(MAX_LINE_BYTES);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut at = 0;
    let mut turn = 0;
    while at < stream.len() {
        let size = if sizes.is_empty() {
            stream.len()
        } else {
            usize::from(sizes[turn % sizes.len()]).max(1)
        };
        turn += 1;
        let end = (at + size).min(stream.len());
        buf.extend_from_slice(&stream[at..end]);
        at = end;
        while let Some(frame) = decoder.decode(&mut buf) {
            frames.push(frame);
        }
    }
    frames
}

/// One fuzz input through the checks above; panics on a finding.
pub fn run(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let n = (usize::from(head) % 8 + 1).min(rest.len());
    let (sizes, stream) = rest.split_at(n);

    let chunked = decode(stream, sizes);
    let whole = decode(stream, &[]);
    assert_eq!(chunked, whole, "chunking changed the frames");

    for frame in &chunked {
        let Frame::Line(line) = frame else { continue };
        match parse_line(line) {
            Ok(None) => assert!(herald_proto::is_blank(line)),
            Ok(Some(command)) => {
                let mut encoded = Vec::new();
                command.encode(&mut encoded);
                assert_eq!(encoded.pop(), Some(b'\n'));
                assert!(!encoded.contains(&b'\n'), "{command:?}");
                assert_eq!(
                    parse_line(&encoded),
                    Ok(Some(command.clone())),
                    "canonical line {:?}",
                    String::from_utf8_lossy(&encoded)
                );
                assert_eq!(Verb::of_line(line), Some(command.verb()));
            }
            Err(err) => {
                let reply = err.to_reply();
                let text = reply.to_line();
                // On the wire a CR or LF of the text (a quoted word may
                // hold a CR) is a space.
                let sent = Reply::error(err.code(), err.to_string().replace(['\r', '\n'], " "));
                assert_eq!(Reply::parse(&text), Ok(sent), "{text:?}");
            }
        }
    }
}
