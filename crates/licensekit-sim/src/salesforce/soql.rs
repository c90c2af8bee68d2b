//! A real parser and evaluator for the SOQL subset licensekit sends (spec §1.7):
//! `SELECT field, Rel.field, Rel.Rel.field FROM Object [WHERE cond] [ORDER BY field [ASC|DESC]]
//! [LIMIT n]`, where `cond` combines `=`, `!=`, `<`, `>`, `<=`, `>=`, `IN (…)`, `NOT IN (…)` with
//! `AND`, `OR` and parentheses. String literals follow the documented escapes (spec §5.1); any
//! other backslash, an unterminated literal or a stray token is `MALFORMED_QUERY`, an unknown
//! field `INVALID_FIELD`, an unknown object `INVALID_TYPE` — so hostile input that escapes its
//! literal changes the parse and is rejected, as Salesforce would.

use std::fmt;

/// A SOQL error, with the Salesforce `errorCode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoqlError {
    pub code: &'static str,
    pub message: String,
}

impl SoqlError {
    fn malformed(message: impl Into<String>) -> Self {
        SoqlError {
            code: "MALFORMED_QUERY",
            message: message.into(),
        }
    }
}

impl fmt::Display for SoqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Int(i64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Cmp(Vec<String>, Op, Literal),
    In(Vec<String>, Vec<Literal>, bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub fields: Vec<Vec<String>>,
    pub object: String,
    pub filter: Option<Cond>,
    pub order_by: Option<(Vec<String>, bool)>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Int(i64),
    Sym(&'static str),
}

fn tokenize(q: &str) -> Result<Vec<Tok>, SoqlError> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err(SoqlError::malformed("unterminated string literal"));
                };
                match c {
                    '\'' => {
                        i += 1;
                        break;
                    }
                    '\\' => {
                        let Some(&e) = chars.get(i + 1) else {
                            return Err(SoqlError::malformed("unterminated escape"));
                        };
                        let decoded = match e {
                            'n' | 'N' => '\n',
                            'r' | 'R' => '\r',
                            't' | 'T' => '\t',
                            'b' | 'B' => '\u{8}',
                            'f' | 'F' => '\u{c}',
                            '"' => '"',
                            '\'' => '\'',
                            '\\' => '\\',
                            'u' => {
                                let hex: String =
                                    chars.get(i + 2..i + 6).unwrap_or(&[]).iter().collect();
                                let cp = u32::from_str_radix(&hex, 16)
                                    .ok()
                                    .filter(|_| hex.len() == 4)
                                    .and_then(char::from_u32)
                                    .ok_or_else(|| {
                                        SoqlError::malformed("invalid unicode escape")
                                    })?;
                                s.push(cp);
                                i += 6;
                                continue;
                            }
                            other => {
                                return Err(SoqlError::malformed(format!(
                                    "Invalid string literal: invalid escape sequence \\{other}"
                                )));
                            }
                        };
                        s.push(decoded);
                        i += 2;
                    }
                    _ => {
                        s.push(c);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Int(
                text.parse()
                    .map_err(|_| SoqlError::malformed("number out of range"))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = match two.as_str() {
                "!=" => Some("!="),
                "<>" => Some("!="),
                "<=" => Some("<="),
                ">=" => Some(">="),
                _ => None,
            };
            if let Some(sym) = sym {
                out.push(Tok::Sym(sym));
                i += 2;
                continue;
            }
            let sym = match c {
                ',' => ",",
                '(' => "(",
                ')' => ")",
                '=' => "=",
                '<' => "<",
                '>' => ">",
                other => {
                    return Err(SoqlError::malformed(format!(
                        "unexpected character `{other}`"
                    )));
                }
            };
            out.push(Tok::Sym(sym));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn keyword(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.is_keyword(kw) {
            self.pos += 1;
            Ok(())
        } else {
            Err(SoqlError::malformed(format!(
                "expected {kw} near {:?}",
                self.peek()
            )))
        }
    }

    fn sym(&mut self, s: &str) -> Result<(), SoqlError> {
        match self.next() {
            Some(Tok::Sym(x)) if x == s => Ok(()),
            other => Err(SoqlError::malformed(format!(
                "expected `{s}`, found {other:?}"
            ))),
        }
    }

    fn path(&mut self) -> Result<Vec<String>, SoqlError> {
        match self.next() {
            Some(Tok::Word(w)) if !is_reserved(&w) => {
                let parts: Vec<String> = w.split('.').map(str::to_owned).collect();
                if parts.iter().any(String::is_empty) {
                    return Err(SoqlError::malformed(format!("bad field name `{w}`")));
                }
                Ok(parts)
            }
            other => Err(SoqlError::malformed(format!(
                "expected a field, found {other:?}"
            ))),
        }
    }

    fn literal(&mut self) -> Result<Literal, SoqlError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Literal::Str(s)),
            Some(Tok::Int(n)) => Ok(Literal::Int(n)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            other => Err(SoqlError::malformed(format!(
                "expected a value, found {other:?}"
            ))),
        }
    }

    fn or(&mut self) -> Result<Cond, SoqlError> {
        let mut left = self.and()?;
        while self.is_keyword("OR") {
            self.pos += 1;
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Cond, SoqlError> {
        let mut left = self.atom()?;
        while self.is_keyword("AND") {
            self.pos += 1;
            left = Cond::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Cond, SoqlError> {
        if self.peek() == Some(&Tok::Sym("(")) {
            self.pos += 1;
            let c = self.or()?;
            self.sym(")")?;
            return Ok(c);
        }
        let field = self.path()?;
        let negated = self.is_keyword("NOT");
        if negated {
            self.pos += 1;
        }
        if self.is_keyword("IN") {
            self.pos += 1;
            self.sym("(")?;
            let mut values = vec![self.literal()?];
            while self.peek() == Some(&Tok::Sym(",")) {
                self.pos += 1;
                values.push(self.literal()?);
            }
            self.sym(")")?;
            return Ok(Cond::In(field, values, negated));
        }
        if negated {
            return Err(SoqlError::malformed("NOT is only supported before IN"));
        }
        let op = match self.next() {
            Some(Tok::Sym("=")) => Op::Eq,
            Some(Tok::Sym("!=")) => Op::Ne,
            Some(Tok::Sym("<")) => Op::Lt,
            Some(Tok::Sym(">")) => Op::Gt,
            Some(Tok::Sym("<=")) => Op::Le,
            Some(Tok::Sym(">=")) => Op::Ge,
            other => {
                return Err(SoqlError::malformed(format!(
                    "expected an operator, found {other:?}"
                )));
            }
        };
        Ok(Cond::Cmp(field, op, self.literal()?))
    }
}

fn is_reserved(w: &str) -> bool {
    [
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIMIT", "ORDER", "BY", "ASC", "DESC",
        "NULLS", "TRUE", "FALSE", "NULL",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(w))
}

/// Parses a query (syntax only; fields are checked against the schema by the caller).
pub fn parse(q: &str) -> Result<Query, SoqlError> {
    let mut p = Parser {
        toks: tokenize(q)?,
        pos: 0,
    };
    p.keyword("SELECT")?;
    let mut fields = vec![p.path()?];
    while p.peek() == Some(&Tok::Sym(",")) {
        p.pos += 1;
        fields.push(p.path()?);
    }
    p.keyword("FROM")?;
    let object = match p.next() {
        Some(Tok::Word(w)) if !is_reserved(&w) && !w.contains('.') => w,
        other => {
            return Err(SoqlError::malformed(format!(
                "expected an object, found {other:?}"
            )));
        }
    };
    let filter = if p.is_keyword("WHERE") {
        p.pos += 1;
        Some(p.or()?)
    } else {
        None
    };
    let order_by = if p.is_keyword("ORDER") {
        p.pos += 1;
        p.keyword("BY")?;
        let f = p.path()?;
        let asc = if p.is_keyword("DESC") {
            p.pos += 1;
            false
        } else {
            if p.is_keyword("ASC") {
                p.pos += 1;
            }
            true
        };
        Some((f, asc))
    } else {
        None
    };
    let limit = if p.is_keyword("LIMIT") {
        p.pos += 1;
        match p.next() {
            Some(Tok::Int(n)) if n >= 0 => Some(n as usize),
            other => return Err(SoqlError::malformed(format!("bad LIMIT {other:?}"))),
        }
    } else {
        None
    };
    if let Some(extra) = p.peek() {
        return Err(SoqlError::malformed(format!("unexpected token: {extra:?}")));
    }
    Ok(Query {
        fields,
        object,
        filter,
        order_by,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_adapter_queries() {
        let q = parse(
            "SELECT Id, UserId, User.Email, User.Profile.Name FROM UserPackageLicense \
             WHERE PackageLicenseId = '05070000000PHmCAAW' AND UserId IN ('005D0000001QX8WIAW', '005D0000001QX8W') \
             ORDER BY Id LIMIT 10",
        )
        .unwrap();
        assert_eq!(q.object, "UserPackageLicense");
        assert_eq!(q.fields[3], vec!["User", "Profile", "Name"]);
        assert_eq!(q.limit, Some(10));
        assert!(matches!(q.filter, Some(Cond::And(..))));
    }

    #[test]
    fn escapes_decode_and_injection_changes_the_parse() {
        let q = parse(r"SELECT Id FROM User WHERE Name = 'O\'Brien \\ x\n'").unwrap();
        assert_eq!(
            q.filter,
            Some(Cond::Cmp(
                vec!["Name".into()],
                Op::Eq,
                Literal::Str("O'Brien \\ x\n".into())
            ))
        );
        // The classic injection, unescaped: the literal closes early and the rest is parsed as SOQL.
        let q = parse("SELECT Id FROM User WHERE Name = 'x' OR Id != ''").unwrap();
        assert!(
            matches!(q.filter, Some(Cond::Or(..))),
            "unescaped input changes the meaning"
        );
        for bad in [
            "SELECT Id FROM User WHERE Name = 'x",
            r"SELECT Id FROM User WHERE Name = 'a\qb'",
            "SELECT Id FROM User WHERE Name = 'x'' OR Id != ''",
            "SELECT Id FROM User; DELETE",
            "SELECT FROM User",
            "SELECT Id FROM User WHERE",
        ] {
            assert_eq!(parse(bad).unwrap_err().code, "MALFORMED_QUERY", "{bad}");
        }
    }
}
