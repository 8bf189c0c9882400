//! Topic and name patterns (`docs/protocol.md` 15): the one matcher the
//! permission checks of the protocol and of the HTTP API use.
//!
//! Pure: no IO, no state. A [`Pattern`] is checked when it is made (its
//! parts are names, `*`, or a last `>`), so matching never fails; it is
//! tested against a reference matcher written the other way round (by
//! counting parts) in the property tests below.

/// A topic or name pattern (15): dot-separated parts, where a part `*`
/// matches exactly one part and a last part `>` one or more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// Checks a pattern: with its wildcard parts read as a letter, it must
    /// be a valid topic name, and `>` may only be the last part.
    ///
    /// # Errors
    /// Why it is not a pattern.
    pub fn parse(pattern: &str) -> Result<Pattern, String> {
        let parts: Vec<&str> = pattern.split('.').collect();
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            if *part == ">" && i != last {
                return Err(format!(
                    "pattern '{pattern}': '>' may only be the last part"
                ));
            }
        }
        let plain: Vec<&str> = parts
            .iter()
            .map(|p| if matches!(*p, "*" | ">") { "x" } else { p })
            .collect();
        if !herald_proto::name::is_valid(&plain.join(".")) {
            return Err(format!(
                "pattern '{pattern}': parts are names (A-Z a-z 0-9 _ -), '*' or a last '>'"
            ));
        }
        Ok(Pattern(pattern.to_string()))
    }

    /// Whether `name` (a topic or a durable name) matches.
    pub fn matches(&self, name: &str) -> bool {
        let mut want = self.0.split('.');
        let mut got = name.split('.');
        loop {
            match (want.next(), got.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(w), Some(g)) if w == g => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pattern(p: &str) -> Pattern {
        Pattern::parse(p).unwrap()
    }

    /// The reference: without a `>`, the same number of parts, each equal
    /// or `*`; with a last `>`, more parts than the pattern's prefix and
    /// that prefix matching part by part.
    fn reference(pattern: &str, name: &str) -> bool {
        let want: Vec<&str> = pattern.split('.').collect();
        let got: Vec<&str> = name.split('.').collect();
        let part = |w: &str, g: &str| w == "*" || w == g;
        match want.split_last() {
            Some((&">", prefix)) => {
                got.len() > prefix.len() && prefix.iter().zip(&got).all(|(w, g)| part(w, g))
            }
            _ => want.len() == got.len() && want.iter().zip(&got).all(|(w, g)| part(w, g)),
        }
    }

    #[test]
    fn star_matches_one_part_and_gt_one_or_more() {
        assert!(pattern("orders.*").matches("orders.eu"));
        assert!(!pattern("orders.*").matches("orders"));
        assert!(!pattern("orders.*").matches("orders.eu.x"));
        assert!(pattern("metrics.>").matches("metrics.a.b"));
        assert!(!pattern("metrics.>").matches("metrics"));
        assert!(pattern(">").matches("anything.at.all"));
        assert!(pattern("a.*.c").matches("a.b.c"));
        assert!(pattern("exact").matches("exact") && !pattern("exact").matches("exactly"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["a.>.b", "a*", "", ".a", "a b", "orders.**", "a.>x"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Parts from a small alphabet, so that patterns and names often share
    /// parts and both answers happen.
    fn parts(wild: bool) -> impl Strategy<Value = Vec<String>> {
        let part = if wild {
            prop_oneof![
                3 => "[ab]{1,2}".prop_map(String::from),
                1 => Just("*".to_string()),
            ]
            .boxed()
        } else {
            "[ab]{1,2}".prop_map(String::from).boxed()
        };
        proptest::collection::vec(part, 1..5)
    }

    proptest! {
        #[test]
        fn matches_exactly_what_the_reference_matches(
            mut want in parts(true),
            gt in any::<bool>(),
            got in parts(false),
        ) {
            if gt {
                *want.last_mut().unwrap() = ">".to_string();
            }
            let p = want.join(".");
            let name = got.join(".");
            prop_assert_eq!(pattern(&p).matches(&name), reference(&p, &name), "{} vs {}", p, name);
        }

        #[test]
        fn a_name_matches_itself_and_gt_matches_everything(got in parts(false)) {
            let name = got.join(".");
            prop_assert!(pattern(&name).matches(&name));
            prop_assert!(pattern(">").matches(&name));
        }
    }
}
