//! Splits a byte stream into lines.
//!
//! The decoder owns framing only (`docs/protocol.md` §2): where a line ends, the
//! line limit, and discarding overlong lines. It knows nothing about commands
//! or UTF-8; [`crate::command::parse_line`] takes it from there.
//!
//! Invariants:
//! - The caller only ever appends to the buffer between calls (the server
//!   reads socket bytes into it). Bytes before `scanned` are known to hold no
//!   LF, so each byte is searched once however the line is split across reads.
//! - `buf` never holds more than `max_line_bytes` bytes of an unterminated
//!   line once `decode` has returned `None`: an overlong line is dropped as it
//!   arrives, and only its end (the LF) is reported, as one [`Frame::TooLong`]
//!   in its place among the frames.

use bytes::{Buf, BytesMut};

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
    /// How many leading bytes of `buf` are already known to hold no LF.
    scanned: usize,
    /// The current line went over the limit: drop bytes until its LF.
    discarding: bool,
}

impl LineDecoder {
    /// A decoder that refuses lines longer than `max_line_bytes` (bytes before the LF).
    pub fn new(max_line_bytes: usize) -> Self {
        LineDecoder {
            max_line_bytes,
            scanned: 0,
            discarding: false,
        }
    }

    /// Takes the next frame out of `buf`, or `None` when `buf` holds no complete line yet.
    ///
    /// Call it until it returns `None`, then read more bytes into `buf`. The
    /// decoder assumes bytes are only appended to `buf` between calls.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        // A buffer shorter than what we scanned means the caller broke the
        // append-only contract (say, cleared it); rescan rather than slice
        // out of bounds.
        let start = if self.scanned <= buf.len() {
            self.scanned
        } else {
            0
        };
        let Some(found) = memchr::memchr(b'\n', &buf[start..]) else {
            if self.discarding || buf.len() > self.max_line_bytes {
                // No LF yet and already too long (or already known to be):
                // every byte here belongs to the overlong line.
                buf.clear();
                self.discarding = true;
                self.scanned = 0;
            } else {
                self.scanned = buf.len();
            }
            return None;
        };
        let end = start + found;
        self.scanned = 0;
        if self.discarding || end > self.max_line_bytes {
            self.discarding = false;
            buf.advance(end + 1);
            return Some(Frame::TooLong);
        }
        let mut line = buf.split_to(end + 1);
        line.truncate(if line.ends_with(b"\r\n") {
            end - 1
        } else {
            end
        });
        Some(Frame::Line(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, parse_line};
    use proptest::prelude::*;

    /// Feeds `input` in pieces cut at `cuts` (in any order), decoding after
    /// each piece like the server does. Returns the frames and the largest
    /// the buffer ever grew (right after a piece was appended).
    fn feed(max: usize, input: &[u8], cuts: &[usize]) -> (Vec<Frame>, usize) {
        let mut decoder = LineDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let mut peak = 0;
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
        bounds.push(input.len());
        bounds.sort_unstable();
        let mut from = 0;
        for to in bounds {
            buf.extend_from_slice(&input[from..to]);
            from = to;
            peak = peak.max(buf.len());
            while let Some(frame) = decoder.decode(&mut buf) {
                frames.push(frame);
            }
        }
        (frames, peak)
    }

    fn line(s: &str) -> Frame {
        Frame::Line(BytesMut::from(s.as_bytes()))
    }

    #[test]
    fn lf_and_crlf_both_end_a_line() {
        let (frames, _) = feed(64, b"ping\r\ntopics\nquit\r\n", &[]);
        assert_eq!(frames, vec![line("ping"), line("topics"), line("quit")]);
    }

    #[test]
    fn only_one_cr_before_the_lf_is_dropped() {
        let (frames, _) = feed(64, b"a\r\r\nb\rc\n", &[]);
        assert_eq!(frames, vec![line("a\r"), line("b\rc")]);
    }

    #[test]
    fn empty_lines_are_returned_empty() {
        let (frames, _) = feed(64, b"\n\r\nx\n", &[]);
        assert_eq!(frames, vec![line(""), line(""), line("x")]);
    }

    #[test]
    fn incomplete_line_waits_for_more_bytes() {
        let mut decoder = LineDecoder::new(64);
        let mut buf = BytesMut::from(&b"pi"[..]);
        assert_eq!(decoder.decode(&mut buf), None);
        assert_eq!(&buf[..], b"pi");
        buf.extend_from_slice(b"ng\r");
        assert_eq!(decoder.decode(&mut buf), None);
        buf.extend_from_slice(b"\nq");
        assert_eq!(decoder.decode(&mut buf), Some(line("ping")));
        assert_eq!(decoder.decode(&mut buf), None);
        assert_eq!(&buf[..], b"q");
    }

    #[test]
    fn line_split_at_every_byte_is_reassembled() {
        let input = b"pub t {\"id\":1,\"msg\":\"a b\"}\r\nping\n";
        let cuts: Vec<usize> = (1..input.len()).collect();
        let (frames, _) = feed(64, input, &cuts);
        assert_eq!(
            frames,
            vec![line("pub t {\"id\":1,\"msg\":\"a b\"}"), line("ping")]
        );
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted() {
        let input = format!("{}\n", "x".repeat(10));
        let (frames, _) = feed(10, input.as_bytes(), &[]);
        assert_eq!(frames, vec![line(&"x".repeat(10))]);
    }

    #[test]
    fn the_cr_counts_towards_the_limit() {
        let input = format!("{}\r\n", "x".repeat(10));
        let (frames, _) = feed(10, input.as_bytes(), &[]);
        assert_eq!(frames, vec![Frame::TooLong]);
    }

    #[test]
    fn line_one_over_the_limit_is_too_long_in_its_place() {
        let input = format!("ping\n{}\nquit\n", "x".repeat(11));
        for cuts in [vec![], vec![7], vec![3, 11, 16]] {
            let (frames, _) = feed(10, input.as_bytes(), &cuts);
            assert_eq!(frames, vec![line("ping"), Frame::TooLong, line("quit")]);
        }
    }

    #[test]
    fn limit_reached_without_lf_waits_then_accepts_lf() {
        let mut decoder = LineDecoder::new(4);
        let mut buf = BytesMut::from(&b"abcd"[..]);
        assert_eq!(decoder.decode(&mut buf), None);
        assert_eq!(buf.len(), 4);
        buf.extend_from_slice(b"\n");
        assert_eq!(decoder.decode(&mut buf), Some(line("abcd")));
    }

    #[test]
    fn overlong_line_is_discarded_as_it_arrives() {
        const LIMIT: usize = 64 * 1024;
        const CHUNK: usize = 4096;
        let mut input = b"ping\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1024 * 1024));
        input.extend_from_slice(b"\nquit\n");
        let cuts: Vec<usize> = (0..input.len()).step_by(CHUNK).collect();
        let (frames, peak) = feed(LIMIT, &input, &cuts);
        assert_eq!(frames, vec![line("ping"), Frame::TooLong, line("quit")]);
        assert!(peak <= LIMIT + CHUNK, "buffer grew to {peak}");
    }

    #[test]
    fn one_too_long_per_overlong_line() {
        let input = format!("{}\n{}\n", "x".repeat(30), "y".repeat(30));
        let cuts: Vec<usize> = (0..input.len()).step_by(3).collect();
        let (frames, _) = feed(8, input.as_bytes(), &cuts);
        assert_eq!(frames, vec![Frame::TooLong, Frame::TooLong]);
    }

    #[test]
    fn buffer_cleared_by_the_caller_does_not_panic() {
        let mut decoder = LineDecoder::new(64);
        let mut buf = BytesMut::from(&b"abcdef"[..]);
        assert_eq!(decoder.decode(&mut buf), None);
        buf.clear();
        buf.extend_from_slice(b"x\n");
        assert_eq!(decoder.decode(&mut buf), Some(line("x")));
    }

    /// A valid command line, in any letter case and spacing.
    fn command_line() -> impl Strategy<Value = String> {
        let topic = "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,12}";
        let ws = "[ \t]{1,3}";
        prop_oneof![
            (topic, ws, "[a-z0-9]{1,8}", 0u8..=255, "[ a-z]{0,20}").prop_map(
                |(t, w, id, p, msg)| {
                    format!("PUB{w}{t}{w}{{\"id\":\"{id}\",\"priority\":{p},\"msg\":\"{msg}\"}}")
                }
            ),
            (topic, ws, 1u16..).prop_map(|(t, w, n)| format!("sub{w}{t}{w}{n}")),
            (topic, ws).prop_map(|(t, w)| format!("{w}Unsubscribe{w}{t}{w}")),
            (topic, ws, "[!-~]{1,10}").prop_map(|(t, w, id)| format!("ack{w}{t}{w}{id}")),
            (topic, ws).prop_map(|(t, w)| format!("name{w}{t}")),
            (topic, ws).prop_map(|(t, w)| format!("create{w}{t}")),
            Just("topics".to_string()),
            (topic, ws).prop_map(|(t, w)| format!("stats{w}{t}")),
            Just("Ping".to_string()),
            Just("".to_string()),
            Just(" \t".to_string()),
        ]
    }

    /// A stream of command lines, each ended by LF or CRLF.
    fn command_stream() -> impl Strategy<Value = (Vec<String>, Vec<u8>)> {
        prop::collection::vec((command_line(), any::<bool>()), 0..40).prop_map(|lines| {
            let mut bytes = Vec::new();
            for (l, crlf) in &lines {
                bytes.extend_from_slice(l.as_bytes());
                bytes.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
            (lines.into_iter().map(|(l, _)| l).collect(), bytes)
        })
    }

    fn commands(frames: &[Frame]) -> Vec<Option<Command>> {
        frames
            .iter()
            .map(|f| match f {
                Frame::Line(l) => parse_line(l).expect("generated lines are valid"),
                Frame::TooLong => panic!("generated lines fit the limit"),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn chunked_stream_decodes_like_the_whole_stream(
            (lines, bytes) in command_stream(),
            cuts in prop::collection::vec(0usize..4096, 0..30),
        ) {
            let (whole, _) = feed(1024, &bytes, &[]);
            let (chunked, _) = feed(1024, &bytes, &cuts);
            let expected: Vec<Frame> = lines.iter().map(|l| line(l)).collect();
            prop_assert_eq!(&whole, &expected);
            prop_assert_eq!(&chunked, &whole);
            prop_assert_eq!(commands(&chunked), commands(&whole));
        }

        #[test]
        fn chunking_does_not_change_too_long_frames(
            lines in prop::collection::vec("[a-z \r]{0,40}", 0..20),
            cuts in prop::collection::vec(0usize..1024, 0..30),
        ) {
            const LIMIT: usize = 16;
            let bytes = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
            let (whole, _) = feed(LIMIT, bytes.as_bytes(), &[]);
            let (chunked, _) = feed(LIMIT, bytes.as_bytes(), &cuts);
            prop_assert_eq!(&chunked, &whole);
            let expected: Vec<Frame> = lines
                .iter()
                .map(|l| if l.len() > LIMIT {
                    Frame::TooLong
                } else {
                    line(l.strip_suffix('\r').unwrap_or(l))
                })
                .collect();
            prop_assert_eq!(whole, expected);
        }

        #[test]
        fn arbitrary_bytes_in_arbitrary_chunks_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..2048),
            cuts in prop::collection::vec(0usize..2048, 0..40),
            max in 0usize..64,
        ) {
            let (frames, _) = feed(max, &bytes, &cuts);
            for frame in &frames {
                if let Frame::Line(l) = frame {
                    prop_assert!(l.len() <= max);
                    let _ = parse_line(l);
                }
            }
        }

        #[test]
        fn buffer_stays_within_limit_plus_one_chunk(
            bytes in prop::collection::vec(prop_oneof![9 => Just(b'x'), 1 => Just(b'\n')], 0..4096),
            chunk in 1usize..64,
        ) {
            const LIMIT: usize = 100;
            let cuts: Vec<usize> = (0..bytes.len()).step_by(chunk).collect();
            let (_, peak) = feed(LIMIT, &bytes, &cuts);
            prop_assert!(peak <= LIMIT + chunk);
        }
    }
}
