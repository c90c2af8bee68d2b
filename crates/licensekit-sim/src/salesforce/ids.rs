//! Salesforce record ids (spec §5.2): a 3-char key prefix, 15 case-sensitive characters, and an
//! 18-char form whose 3-char suffix encodes which of the 15 are uppercase.

const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 3-char case suffix of a 15-char id.
pub fn suffix(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (j, _)| acc | (1 << j));
            SUFFIX_ALPHABET[bits] as char
        })
        .collect()
}

/// The 18-char form of a 15- or 18-char id, or `None` when it is not a well-formed id (wrong
/// length, characters, or an 18-char suffix that does not match).
pub fn to_18(id: &str) -> Option<String> {
    if !id.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(format!("{id}{}", suffix(id))),
        18 => {
            let (head, tail) = id.split_at(15);
            // The suffix is case-insensitive; the first 15 characters are not.
            tail.eq_ignore_ascii_case(&suffix(head))
                .then(|| format!("{head}{}", suffix(head)))
        }
        _ => None,
    }
}

/// A fresh 18-char id: `prefix` + a 12-char base62 counter + suffix.
pub fn make(prefix: &str, n: u64) -> String {
    let mut digits = [b'0'; 12];
    let mut v = n;
    for d in digits.iter_mut().rev() {
        *d = BASE62[(v % 62) as usize];
        v /= 62;
    }
    let id15 = format!("{prefix}{}", std::str::from_utf8(&digits).expect("ascii"));
    format!("{id15}{}", suffix(&id15))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_vectors() {
        // spec §5.2 / payloads P-16.
        for (id15, sfx) in [
            ("005D0000001QX8W", "IAW"),
            ("00exx000000jz1S", "AAQ"),
            ("05070000000PHmC", "AAW"),
            ("0510m00000008ps", "AAA"),
            ("AaaAABbbBBCccCC", "ZZZ"),
            ("AAaAAbbBBBCcCCC", "123"),
            ("a0D30000001n7Pi", "EAI"),
        ] {
            assert_eq!(suffix(id15), sfx, "{id15}");
        }
        assert_eq!(
            to_18("05070000000PHmCaaw").as_deref(),
            Some("05070000000PHmCAAW")
        );
        assert_eq!(to_18("05070000000PHmCAAX"), None);
        assert_eq!(to_18("0507000000'PHmC"), None);
        let id = make("051", 12345);
        assert_eq!(id.len(), 18);
        assert_eq!(to_18(&id).as_deref(), Some(id.as_str()));
    }
}
