//! Arbitrary bytes as a log record payload: `herald_core::record::decode`
//! never panics, and whatever decodes encodes back to exactly the same
//! bytes (one encoding per change), in `payload_len` bytes; a version-1
//! kind, which encodes as its successor, decodes again to the same change.

use herald_core::record;

/// One fuzz input through the checks above; panics on a finding.
pub fn run(data: &[u8]) {
    let Ok(change) = record::decode(data) else {
        return;
    };
    let mut encoded = Vec::new();
    record::encode(&change, &mut encoded);
    assert_eq!(record::payload_len(&change), encoded.len());
    if record::is_legacy_kind(data[0]) {
        assert_eq!(record::decode(&encoded).as_ref(), Ok(&change));
        return;
    }
    assert_eq!(
        encoded, data,
        "{change:?} does not encode back to its bytes"
    );
    // The name-sharing decoder of a replay decodes the same.
    let mut decoder = record::Decoder::new();
    for _ in 0..2 {
        assert_eq!(decoder.decode(data).as_ref(), Ok(&change));
    }
}
