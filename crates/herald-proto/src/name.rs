//! Names of topics and clients: 1 to 128 bytes of `A-Z a-z 0-9 _ - .`, not
//! starting with `.`.

/// Longest topic or client name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Whether `name` is a valid topic or client name.
pub fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_BYTES
        && bytes[0] != b'.'
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
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
