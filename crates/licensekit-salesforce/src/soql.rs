//! Building SOQL safely: every string literal escaped per the documented escapes (spec §5.1),
//! namespaces validated, ids validated ([`crate::ids`]); no caller text is ever interpolated raw.

// Reached from outside only through the hidden `testing` module, which is not API.
#![cfg_attr(feature = "testing", allow(missing_docs))]

use licensekit_core::{Error, Result};

use crate::ids::SalesforceId;

/// Longest string literal accepted (profile and package names are far shorter).
const MAX_LITERAL: usize = 255;

/// A quoted SOQL string literal: `\` and `'` (reserved), `"` and the control characters with a
/// documented escape are escaped; other control characters and over-long values are refused.
pub fn quote(value: &str) -> Result<String> {
    if value.chars().count() > MAX_LITERAL {
        return Err(Error::invalid_input(format!(
            "a SOQL value is limited to {MAX_LITERAL} characters"
        )));
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {
                return Err(Error::invalid_input(format!(
                    "control character U+{:04X} is not allowed in a SOQL value",
                    c as u32
                )));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// A quoted id literal (ids are validated, so quoting is only a formality).
pub fn id(value: &SalesforceId) -> String {
    format!("'{}'", value.as_str())
}

/// `('a','b',…)` for an `IN` list of validated ids.
pub fn id_list<'a>(ids: impl IntoIterator<Item = &'a SalesforceId>) -> String {
    let inner: Vec<String> = ids.into_iter().map(id).collect();
    format!("({})", inner.join(","))
}

/// A managed-package namespace prefix: a letter, then letters, digits or `_`, 1–15 characters.
pub fn validate_namespace(ns: &str) -> Result<()> {
    let mut chars = ns.chars();
    let ok = ns.len() <= 15
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "`{}` is neither a PackageLicense id nor a namespace prefix",
            ns.chars().take(40).collect::<String>().escape_debug()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_the_documented_escapes() {
        // simple-salesforce's vector (spec §4.1): val'ue1\n -> 'val\'ue1\n'
        assert_eq!(quote("val'ue1\n").unwrap(), r"'val\'ue1\n'");
        assert_eq!(quote(r#"a\b"c"#).unwrap(), r#"'a\\b\"c'"#);
        assert_eq!(quote("' OR Id != '").unwrap(), r"'\' OR Id != \''");
        assert_eq!(quote("Ünïcødé ✓").unwrap(), "'Ünïcødé ✓'");
        assert!(quote("nul\0byte").is_err());
        assert!(quote(&"x".repeat(256)).is_err());
    }

    #[test]
    fn namespaces() {
        for ok in ["acme", "acme_101", "A1"] {
            validate_namespace(ok).unwrap();
        }
        for bad in ["", "1acme", "acme'", "a b", "abcdefghijklmnop", "acme--x"] {
            assert!(validate_namespace(bad).is_err(), "{bad}");
        }
    }
}
