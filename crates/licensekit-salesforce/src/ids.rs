//! Salesforce record ids, validated before they reach a query or a URL (spec §5.2): 15
//! case-sensitive alphanumerics, or 18 whose last 3 encode the case of the first 15.

// Reached from outside only through the hidden `testing` module, which is not API.
#![cfg_attr(feature = "testing", allow(missing_docs))]

use std::fmt;

use licensekit_core::{Error, Result};

/// Key prefixes of the objects this adapter touches.
pub const USER_PREFIX: &str = "005";
pub const PACKAGE_LICENSE_PREFIX: &str = "050";
pub const USER_PACKAGE_LICENSE_PREFIX: &str = "051";

const CASE_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// A validated id, always in its 18-character form (ids compare equal whichever form came in).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SalesforceId(String);

fn case_suffix(first15: &str) -> String {
    first15
        .as_bytes()
        .chunks(5)
        .map(|chunk| {
            let mut bits = 0usize;
            for (position, byte) in chunk.iter().enumerate() {
                if byte.is_ascii_uppercase() {
                    bits |= 1 << position;
                }
            }
            CASE_ALPHABET[bits] as char
        })
        .collect()
}

impl SalesforceId {
    /// Parses a 15- or 18-char id, checking the checksum of an 18-char id and, when given, the
    /// key prefix (`005` for users, …).
    pub fn parse(raw: &str, prefix: Option<&str>) -> Result<Self> {
        let invalid = |why: &str| {
            Error::invalid_input(format!(
                "`{}` is not a valid Salesforce id: {why}",
                raw.chars().take(40).collect::<String>().escape_debug()
            ))
        };
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid("only letters and digits are allowed"));
        }
        let id = match raw.len() {
            15 => format!("{raw}{}", case_suffix(raw)),
            18 => {
                let (head, tail) = raw.split_at(15);
                let expected = case_suffix(head);
                if !tail.eq_ignore_ascii_case(&expected) {
                    return Err(invalid("the 18-character checksum does not match"));
                }
                format!("{head}{expected}")
            }
            _ => return Err(invalid("it must have 15 or 18 characters")),
        };
        if let Some(prefix) = prefix {
            if !id.starts_with(prefix) {
                return Err(invalid(&format!("expected an id starting with {prefix}")));
            }
        }
        Ok(SalesforceId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_vectors_and_prefixes() {
        // spec §5.2 / P-16.
        for (id15, id18) in [
            ("005D0000001QX8W", "005D0000001QX8WIAW"),
            ("05070000000PHmC", "05070000000PHmCAAW"),
            ("0510m00000008ps", "0510m00000008psAAA"),
            ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),
            ("AAaAAbbBBBCcCCC", "AAaAAbbBBBCcCCC123"),
        ] {
            assert_eq!(SalesforceId::parse(id15, None).unwrap().as_str(), id18);
            assert_eq!(SalesforceId::parse(id18, None).unwrap().as_str(), id18);
            // 15-char ids are case-sensitive: another case is another record.
            let other_case = id15.to_ascii_lowercase();
            if other_case != id15 {
                assert_ne!(
                    SalesforceId::parse(&other_case, None).unwrap().as_str(),
                    id18
                );
            }
        }
        assert!(
            SalesforceId::parse("005D0000001QX8Wiaw", None).is_ok(),
            "suffix is case-insensitive"
        );
        assert!(
            SalesforceId::parse("005D0000001QX8WIAX", None).is_err(),
            "bad checksum"
        );
        assert!(SalesforceId::parse("005D0000001QX8WIAW", Some(PACKAGE_LICENSE_PREFIX)).is_err());
        for hostile in [
            "005D0000001QX8' OR Id != '",
            "005D0000001QX8W\n",
            "",
            "005D00000\\1QX8W",
            "0050000000000000000000",
        ] {
            assert!(SalesforceId::parse(hostile, None).is_err(), "{hostile:?}");
        }
    }
}
