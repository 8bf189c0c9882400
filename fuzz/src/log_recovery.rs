//! Arbitrary bytes as the contents of one or two log segments, recovered
//! with the code recovery runs on every file (`herald_log::scan_bytes`),
//! each payload decoded by `herald_core::record`, as the server does. It
//! never panics, and it either recovers (a torn tail allowed, in the newest
//! segment only) or reports `Corrupt` naming the file and an offset inside
//! it. A recovered torn tail, cut off as `Log::open` does, scans clean.
//!
//! Input: a mode byte, then the bytes. Mode bit 0: prepend a valid segment
//! header to each segment (so most inputs get past the header check). Bit
//! 1: two segments, the first one's length in the next two bytes (LE).

use herald_core::record;
use herald_log::{Error, FORMAT_VERSION, HEADER_BYTES, MAGIC, SegmentId, SegmentScan, scan_bytes};
use std::path::Path;

fn header(id: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_BYTES as usize);
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&[0; 4]);
    h.extend_from_slice(&id.to_le_bytes());
    h
}

/// Scans one segment and checks what any scan must satisfy.
fn scan(
    path: &Path,
    id: u64,
    data: &[u8],
    newest: bool,
    decoder: &mut record::Decoder,
) -> Option<SegmentScan> {
    let mut replayed = 0u64;
    let result = scan_bytes(path, SegmentId(id), data, newest, |payload| {
        decoder.decode(payload)?;
        replayed += 1;
        Ok::<_, record::RecordError>(())
    });
    match result {
        Ok(scanned) => {
            assert_eq!(scanned.records, replayed);
            assert!(HEADER_BYTES <= scanned.end && scanned.end <= data.len() as u64);
            if let Some(torn) = scanned.torn_at {
                assert!(newest, "torn tail in an older segment");
                assert_eq!(torn, scanned.end);
            }
            Some(scanned)
        }
        Err(Error::Corrupt {
            segment, offset, ..
        }) => {
            assert_eq!(segment, path);
            assert!(
                offset == 0 || offset < data.len() as u64,
                "offset {offset} outside a file of {} bytes",
                data.len()
            );
            None
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// One fuzz input through the checks above; panics on a finding.
pub fn run(input: &[u8]) {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let with_header = mode & 1 == 1;
    let segments: Vec<&[u8]> = if mode & 2 == 2 {
        let Some((len, rest)) = rest.split_first_chunk::<2>() else {
            return;
        };
        let (older, newest) = rest.split_at((u16::from_le_bytes(*len) as usize).min(rest.len()));
        vec![older, newest]
    } else {
        vec![rest]
    };
    let mut decoder = record::Decoder::new();
    let count = segments.len();
    for (i, bytes) in segments.into_iter().enumerate() {
        let id = i as u64 + 1;
        let data = if with_header {
            let mut data = header(id);
            data.extend_from_slice(bytes);
            data
        } else {
            bytes.to_vec()
        };
        let path = Path::new("segment").join(id.to_string());
        let newest = i + 1 == count;
        let Some(scanned) = scan(&path, id, &data, newest, &mut decoder) else {
            return;
        };
        if let Some(torn) = scanned.torn_at {
            // What `Log::open` does with a torn tail: cut it off (and
            // preallocate zeros again). The result is a clean segment with
            // the same records.
            let mut repaired = data[..torn as usize].to_vec();
            repaired.extend_from_slice(&[0; 64]);
            let again = scan(&path, id, &repaired, true, &mut record::Decoder::new())
                .expect("a repaired segment recovers");
            assert_eq!(again.torn_at, None);
            assert_eq!((again.end, again.records), (scanned.end, scanned.records));
        }
    }
}
