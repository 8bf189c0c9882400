//! Names of topics and clients: 1 to 128 bytes of `A-Z a-z 0-9 _ - .`, not
//! starting with `.`.

/// Longest topic or client name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// The bytes a name may hold, as a table: every `pub` and `ack` checks a
/// topic name, and one load a byte beats four range tests.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.');
        b += 1;
    }
    table
};

/// Whether `name` is a valid topic or client name.
pub fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_BYTES
        && bytes[0] != b'.'
        && bytes.iter().all(|&b| NAME_BYTES[usize::from(b)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_characters() {
        assert!(is_valid("tweets"));
        assert!(is_valid("a.b-c_D9"));
        assert!(is_valid(&"x".repeat(MAX_NAME_BYTES)));
    }

    #[test]
    fn rejects_empty_long_dotted_and_other_characters() {
        assert!(!is_valid(""));
        assert!(!is_valid(".hidden"));
        assert!(!is_valid(&"x".repeat(MAX_NAME_BYTES + 1)));
        assert!(!is_valid("a b"));
        assert!(!is_valid("a/b"));
        assert!(!is_valid("é"));
    }
}
