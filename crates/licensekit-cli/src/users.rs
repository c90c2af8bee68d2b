//! `--users-file`: holder ids from a text or CSV file, read with the `csv` crate.
//!
//! Accepted: one id per line, or CSV with the id in the first column (or, when the first row is a
//! header, in the column whose name says it holds ids). A UTF-8 byte-order mark (Excel's
//! default), CRLF line ends, quoted fields, blank lines and `#` comment lines are fine.
//! Duplicates are kept: the engine reports each repeat as a duplicate of its first occurrence.
//! Anything else (an empty id, an id with control characters, a field left open by an unmatched
//! quote, text that is not UTF-8) is a usage error naming the file and line, found before anything
//! is sent.

use std::path::Path;

/// Header names that mark a column of holder ids (compared lowercased, without `_`, `-`, spaces).
const ID_COLUMNS: &[&str] = &[
    "id",
    "userid",
    "user",
    "holder",
    "holderid",
    "serial",
    "serialnumber",
    "clientuserid",
];

fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A line of a users file that cannot be read as a holder id.
#[derive(Debug, PartialEq, Eq)]
pub struct UsersFileError(pub String);

/// Reads the file at `path`; errors name it.
pub fn read(path: &Path) -> Result<Vec<String>, UsersFileError> {
    let bytes = std::fs::read(path)
        .map_err(|e| UsersFileError(format!("cannot read {}: {e}", path.display())))?;
    parse(&bytes, &path.display().to_string())
}

/// Parses the bytes of a users file called `name` (for messages).
pub fn parse(bytes: &[u8], name: &str) -> Result<Vec<String>, UsersFileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Line ends become `\n` first, and lines are counted from each record's byte offset: the
    // csv crate (1.4) counts lines short after CRLF ends and blank lines, and an error must name
    // the line the user sees. (An id never holds a line break anyway.)
    let bytes = unify_line_ends(bytes);
    let line_at = |position: Option<&csv::Position>| {
        position.map_or(0, |p| {
            // The offset is where the reader started: before the blank and comment lines it
            // skipped on the way to the record.
            let mut at = usize::try_from(p.byte())
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let mut line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
            while matches!(bytes.get(at), Some(b'\n' | b'#')) {
                at += bytes[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len() - at, |n| n + 1);
                line += 1;
            }
            line
        })
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let mut ids = Vec::new();
    let mut column = 0;
    let mut first = true;
    let mut record = csv::ByteRecord::new();
    loop {
        let more = reader.read_byte_record(&mut record).map_err(|e| {
            let line = line_at(e.position());
            UsersFileError(format!("{name}: line {line}: {e}"))
        })?;
        if !more {
            break;
        }
        // The line number is counted only when an error needs it: counting it for every record
        // made reading a 10,000-line file quadratic.
        let position = record.position().cloned();
        let invalid = |why: &str| {
            let line = line_at(position.as_ref());
            UsersFileError(format!("{name}: line {line}: {why}"))
        };
        let fields: Vec<&str> = record
            .iter()
            .map(|f| {
                std::str::from_utf8(f)
                    .map_err(|_| invalid("not UTF-8 text (save the file as UTF-8)"))
            })
            .collect::<Result<_, _>>()?;
        // A line of empty fields (",,," from a spreadsheet) is blank.
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        if std::mem::take(&mut first) {
            if let Some(at) = fields
                .iter()
                .position(|f| ID_COLUMNS.contains(&normalize(f).as_str()))
            {
                column = at;
                continue;
            }
        }
        let id = fields.get(column).copied().unwrap_or("");
        if id.is_empty() {
            return Err(invalid(&format!(
                "no holder id in column {} (remove the line, or put `#` before it)",
                column + 1
            )));
        }
        if id.chars().any(char::is_control) {
            return Err(invalid(
                "the holder id holds a control character or a line break (an unmatched quote?)",
            ));
        }
        if id.contains('"') {
            return Err(invalid(
                "the holder id holds a quote character (an unmatched quote?)",
            ));
        }
        ids.push(id.to_owned());
    }
    Ok(ids)
}

/// CRLF and lone CR to LF.
fn unify_line_ends(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter().peekable();
    while let Some(&b) = iter.next() {
        if b == b'\r' {
            if iter.peek() == Some(&&b'\n') {
                iter.next();
            }
            out.push(b'\n');
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<String> {
        parse(text.as_bytes(), "users.csv").unwrap()
    }

    fn err(text: &[u8]) -> String {
        parse(text, "users.csv").unwrap_err().0
    }

    #[test]
    fn plain_lines_blank_lines_and_comments() {
        assert_eq!(
            ok("# team A\nada\n\n  bob  \n#carol\n,,\ndan\n"),
            ["ada", "bob", "dan"]
        );
    }

    #[test]
    fn bom_and_crlf_with_a_header_row() {
        assert_eq!(
            ok("\u{feff}user_id,comment\r\nada,first\r\nbob,second\r\n"),
            ["ada", "bob"]
        );
        // Without a header, the BOM must not stick to the first id either.
        assert_eq!(ok("\u{feff}ada\r\nbob"), ["ada", "bob"]);
    }

    #[test]
    fn the_header_names_the_id_column() {
        assert_eq!(
            ok("name,Serial Number\n\"Doe, Jane\",DMP001\nRoe,DMP002\n"),
            ["DMP001", "DMP002"]
        );
    }

    #[test]
    fn quoted_fields_keep_their_commas() {
        assert_eq!(
            ok("\"ada,lovelace\",x\n\" bob \",\"y,z\"\n"),
            ["ada,lovelace", "bob"]
        );
        // A quote inside an id is refused rather than guessed at.
        let e = err(b"\"bob\"\"s\"\n");
        assert!(e.contains("line 1: the holder id holds a quote"), "{e}");
    }

    #[test]
    fn duplicates_are_kept_for_the_engine() {
        assert_eq!(ok("ada\nbob\nada\n"), ["ada", "bob", "ada"]);
    }

    #[test]
    fn an_invalid_line_names_the_file_and_line() {
        let e = err(b"ada\n,comment without id\n");
        assert!(e.starts_with("users.csv: line 2: no holder id"), "{e}");
        let e = err(b"id\nada\n\"bob\ncarol\n");
        assert!(e.starts_with("users.csv: line 3:"), "{e}");
        let e = err(b"ada\nb\xffb\n");
        assert!(e.starts_with("users.csv: line 2: not UTF-8"), "{e}");
        let e = err(b"id\r\nada\r\n\r\n,x\r\n");
        assert!(
            e.starts_with("users.csv: line 4:"),
            "CRLF lines counted right: {e}"
        );
        let e = err(b"# c\n\nada\n\n\n#\n,x\n");
        assert!(
            e.starts_with("users.csv: line 7:"),
            "blank and comment lines count: {e}"
        );
        let e = err(b"ada\nb\x07b\n");
        assert!(e.contains("line 2: the holder id holds a control"), "{e}");
    }
}
