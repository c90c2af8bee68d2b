//! A real parser and evaluator for the SOQL subset licensekit and the popular clients send
//! (spec §1.7): `SELECT field, Rel.field, Rel.Rel.field | COUNT() | COUNT(field) [alias] FROM
//! Object [WHERE cond] [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n]`, where `cond`
//! combines `=`, `!=`, `<`, `>`, `<=`, `>=`, `LIKE`, `IN (…)`, `NOT IN (…)`, semi-joins
//! `IN (SELECT field FROM Object [WHERE cond])` and anti-joins `NOT IN (SELECT …)` with `AND`,
//! `OR`, `NOT` and parentheses; values are strings, numbers, booleans, `null`, dates and datetimes
//! (`2026-01-31`, `2026-01-31T10:00:00Z`, `…+01:00`) and date literals (`TODAY`,
//! `LAST_N_DAYS:30`, …). Sources: SOQL and SOSL Reference — "COUNT() and COUNT(fieldName)",
//! "Comparison Operators" (LIKE: `%` and `_` wildcards, case-insensitive, `\%` and `\_` escape
//! them), "Semi-Joins with IN and Anti-Joins with NOT IN", "ORDER BY" (nulls sort first by
//! default; sorting is case-insensitive), "Date Formats and Date Literals". String literals follow the documented escapes (spec §5.1); any
//! other backslash, an unterminated literal or a stray token is `MALFORMED_QUERY`, an unknown
//! field `INVALID_FIELD`, an unknown object `INVALID_TYPE` — so hostile input that escapes its
//! literal changes the parse and is rejected, as Salesforce would.

use std::fmt;

/// A SOQL error, with the Salesforce `errorCode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoqlError {
    /// The Salesforce `errorCode`: `MALFORMED_QUERY`, `INVALID_FIELD` or `INVALID_TYPE`.
    pub code: &'static str,
    /// What is wrong, as the API's `message` says it.
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
/// A literal value in a condition.
pub enum Literal {
    /// A quoted string, escapes resolved.
    Str(String),
    /// An integer.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A date (`2026-01-31`) or datetime (`2026-01-31T10:00:00Z`), unquoted, as written.
    DateTime(String),
    /// A date literal (`TODAY`, `LAST_N_DAYS`) and its `:n`, if any.
    DateLiteral(String, Option<i64>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// A comparison operator.
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
/// A `WHERE` condition. Field paths are lists of names (`Owner.Profile.Name` → three).
pub enum Cond {
    /// `a AND b`
    And(Box<Cond>, Box<Cond>),
    /// `a OR b`
    Or(Box<Cond>, Box<Cond>),
    /// `field op literal`
    Cmp(Vec<String>, Op, Literal),
    /// `field IN (…)`, or `NOT IN (…)` when the flag is true.
    In(Vec<String>, Vec<Literal>, bool),
    /// `field LIKE 'pattern'` (the pattern still holds `\%` and `\_` escapes).
    Like(Vec<String>, String),
    /// `field [NOT] IN (SELECT …)`: a semi-join, or an anti-join when negated.
    SemiJoin(Vec<String>, Box<Query>, bool),
    /// `NOT cond`
    Not(Box<Cond>),
}

/// `COUNT()` (the row count, no records) or `COUNT(field)` (an AggregateResult).
#[derive(Debug, Clone, PartialEq)]
pub enum Count {
    /// `COUNT()`.
    Rows,
    /// `COUNT(field)` with its alias, if any.
    Field(Vec<String>, Option<String>),
}

/// One `ORDER BY` key: field, ascending, nulls first.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    /// The field path to sort by.
    pub field: Vec<String>,
    /// `ASC` (the default) or `DESC`.
    pub ascending: bool,
    /// `NULLS FIRST` (the default, either direction) or `NULLS LAST`.
    pub nulls_first: bool,
}

#[derive(Debug, Clone, PartialEq)]
/// A parsed `SELECT`.
pub struct Query {
    /// The selected field paths (empty with `COUNT()`).
    pub fields: Vec<Vec<String>>,
    /// `COUNT()` or `COUNT(field)`, if selected.
    pub count: Option<Count>,
    /// The `FROM` object.
    pub object: String,
    /// The `WHERE` condition, if any.
    pub filter: Option<Cond>,
    /// The `ORDER BY` keys, in order.
    pub order_by: Vec<OrderKey>,
    /// The `LIMIT`, if any.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Int(i64),
    DateTime(String),
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
                            // LIKE's escaped wildcards stay escaped for the matcher.
                            '%' | '_' => {
                                s.push('\\');
                                e
                            }
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
        } else if chars
            .get(i..i + 5)
            .is_some_and(|d| d[..4].iter().all(char::is_ascii_digit) && d[4] == '-')
        {
            // A date or datetime literal, unquoted: checked when it meets a field.
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_digit() || "-:T.Z+".contains(*c))
            {
                i += 1;
            }
            out.push(Tok::DateTime(chars[start..i].iter().collect()));
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
            // `LAST_N_DAYS:30`: a date literal with its number.
            if chars.get(i) == Some(&':') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                i += 1;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
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
            Some(Tok::DateTime(d)) => Ok(Literal::DateTime(d)),
            Some(Tok::Word(w)) if is_date_literal(&w) => {
                let (name, n) = match w.split_once(':') {
                    Some((name, n)) => (
                        name.to_ascii_uppercase(),
                        Some(
                            n.parse()
                                .map_err(|_| SoqlError::malformed("date literal out of range"))?,
                        ),
                    ),
                    None => (w.to_ascii_uppercase(), None),
                };
                Ok(Literal::DateLiteral(name, n))
            }
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
        if self.is_keyword("NOT") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.atom()?)));
        }
        let field = self.path()?;
        let negated = self.is_keyword("NOT");
        if negated {
            self.pos += 1;
        }
        if self.is_keyword("LIKE") && !negated {
            self.pos += 1;
            return match self.next() {
                Some(Tok::Str(pattern)) => Ok(Cond::Like(field, pattern)),
                other => Err(SoqlError::malformed(format!(
                    "LIKE needs a string, found {other:?}"
                ))),
            };
        }
        if self.is_keyword("IN") {
            self.pos += 1;
            self.sym("(")?;
            if self.is_keyword("SELECT") {
                let sub = self.select()?;
                self.sym(")")?;
                if sub.fields.len() != 1 || sub.count.is_some() {
                    return Err(SoqlError::malformed(
                        "a semi-join selects exactly one field",
                    ));
                }
                return Ok(Cond::SemiJoin(field, Box::new(sub), negated));
            }
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
        "NULLS", "TRUE", "FALSE", "NULL", "LIKE",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(w))
}

/// The date literals of the SOQL reference ("Date Formats and Date Literals") the simulator
/// evaluates; the `_N_` ones take `:n`.
pub const DATE_LITERALS: &[&str] = &[
    "YESTERDAY",
    "TODAY",
    "TOMORROW",
    "LAST_WEEK",
    "THIS_WEEK",
    "NEXT_WEEK",
    "LAST_MONTH",
    "THIS_MONTH",
    "NEXT_MONTH",
    "LAST_90_DAYS",
    "NEXT_90_DAYS",
    "THIS_YEAR",
    "LAST_YEAR",
    "NEXT_YEAR",
    "LAST_N_DAYS",
    "NEXT_N_DAYS",
    "N_DAYS_AGO",
    "LAST_N_WEEKS",
    "NEXT_N_WEEKS",
    "LAST_N_MONTHS",
    "NEXT_N_MONTHS",
    "LAST_N_YEARS",
    "NEXT_N_YEARS",
];

fn is_date_literal(w: &str) -> bool {
    let (name, n) = match w.split_once(':') {
        Some((name, n)) => (name, Some(n)),
        None => (w, None),
    };
    DATE_LITERALS
        .iter()
        .any(|l| l.eq_ignore_ascii_case(name) && (l.contains("_N_") == n.is_some()))
}

impl Parser {
    /// `SELECT … FROM Object [WHERE …] [ORDER BY …] [LIMIT n]`, stopping before anything else.
    fn select(&mut self) -> Result<Query, SoqlError> {
        self.keyword("SELECT")?;
        let mut fields = Vec::new();
        let mut count = None;
        loop {
            if self.is_keyword("COUNT") && self.toks.get(self.pos + 1) == Some(&Tok::Sym("(")) {
                self.pos += 2;
                if self.peek() == Some(&Tok::Sym(")")) {
                    self.pos += 1;
                    count = Some(Count::Rows);
                } else {
                    let field = self.path()?;
                    self.sym(")")?;
                    let alias = match self.peek() {
                        Some(Tok::Word(w)) if !is_reserved(w) => {
                            let w = w.clone();
                            self.pos += 1;
                            Some(w)
                        }
                        _ => None,
                    };
                    count = Some(Count::Field(field, alias));
                }
            } else {
                fields.push(self.path()?);
            }
            if self.peek() == Some(&Tok::Sym(",")) {
                self.pos += 1;
            } else {
                break;
            }
        }
        if count.is_some() && !fields.is_empty() {
            // Other fields next to an aggregate need GROUP BY, which the simulator lacks.
            return Err(SoqlError::malformed(
                "field must be grouped or aggregated (GROUP BY is not supported)",
            ));
        }
        if count == Some(Count::Rows) && self.is_keyword("ORDER") {
            return Err(SoqlError::malformed("COUNT() cannot be ordered"));
        }
        self.keyword("FROM")?;
        let object = match self.next() {
            Some(Tok::Word(w)) if !is_reserved(&w) && !w.contains('.') => w,
            other => {
                return Err(SoqlError::malformed(format!(
                    "expected an object, found {other:?}"
                )));
            }
        };
        let filter = if self.is_keyword("WHERE") {
            self.pos += 1;
            Some(self.or()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.is_keyword("ORDER") {
            self.pos += 1;
            self.keyword("BY")?;
            loop {
                let field = self.path()?;
                let ascending = if self.is_keyword("DESC") {
                    self.pos += 1;
                    false
                } else {
                    if self.is_keyword("ASC") {
                        self.pos += 1;
                    }
                    true
                };
                // "By default, null values are sorted first" (SOQL reference, ORDER BY).
                let nulls_first = if self.is_keyword("NULLS") {
                    self.pos += 1;
                    if self.is_keyword("FIRST") {
                        self.pos += 1;
                        true
                    } else {
                        self.keyword("LAST")?;
                        false
                    }
                } else {
                    true
                };
                order_by.push(OrderKey {
                    field,
                    ascending,
                    nulls_first,
                });
                if self.peek() == Some(&Tok::Sym(",")) {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        let limit = if self.is_keyword("LIMIT") {
            self.pos += 1;
            match self.next() {
                Some(Tok::Int(n)) if n >= 0 => Some(n as usize),
                other => return Err(SoqlError::malformed(format!("bad LIMIT {other:?}"))),
            }
        } else {
            None
        };
        Ok(Query {
            fields,
            count,
            object,
            filter,
            order_by,
            limit,
        })
    }
}

/// Parses a query (syntax only; fields are checked against the schema by the caller).
pub fn parse(q: &str) -> Result<Query, SoqlError> {
    let mut p = Parser {
        toks: tokenize(q)?,
        pos: 0,
    };
    let query = p.select()?;
    if let Some(extra) = p.peek() {
        return Err(SoqlError::malformed(format!("unexpected token: {extra:?}")));
    }
    Ok(query)
}

/// Whether `value` matches a LIKE `pattern`: `%` any run, `_` one character, `\%` and `\_`
/// themselves; case-insensitive.
pub fn like(value: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Char(char),
    }
    let mut parts = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        parts.push(match c {
            '%' => P::Any,
            '_' => P::One,
            '\\' => P::Char(chars.next().unwrap_or('\\')),
            c => P::Char(c),
        });
    }
    let value: Vec<char> = value.chars().flat_map(char::to_lowercase).collect();
    let parts: Vec<P> = parts
        .into_iter()
        .map(|p| match p {
            P::Char(c) => P::Char(c.to_lowercase().next().unwrap_or(c)),
            other => other,
        })
        .collect();
    // Classic wildcard matching with backtracking to the last `%`.
    let (mut v, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        match parts.get(p) {
            Some(P::Any) => {
                star = Some((p, v));
                p += 1;
            }
            Some(P::One) => {
                v += 1;
                p += 1;
            }
            Some(P::Char(c)) if *c == value[v] => {
                v += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    p = sp + 1;
                    v = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    parts[p..].iter().all(|x| *x == P::Any)
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

    /// The forms the popular clients and admin scripts send (issue 15), each parsed to what it
    /// means.
    #[test]
    fn parses_counts_semi_joins_like_nulls_and_dates() {
        let q = parse("SELECT COUNT() FROM UserPackageLicense").unwrap();
        assert_eq!(q.count, Some(Count::Rows));
        let q = parse("SELECT COUNT(Id) n FROM User WHERE IsActive = true").unwrap();
        assert_eq!(
            q.count,
            Some(Count::Field(vec!["Id".into()], Some("n".into())))
        );
        let q = parse(
            "SELECT Id FROM User WHERE Id IN (SELECT UserId FROM UserPackageLicense WHERE PackageLicense.NamespacePrefix = 'acme') \
             AND Id NOT IN (SELECT UserId FROM UserPackageLicense WHERE PackageLicense.NamespacePrefix = 'crm')",
        )
        .unwrap();
        let Some(Cond::And(a, b)) = q.filter else {
            panic!("{q:?}")
        };
        assert!(matches!(*a, Cond::SemiJoin(_, _, false)));
        assert!(matches!(*b, Cond::SemiJoin(_, _, true)));
        let q = parse("SELECT Id FROM User WHERE NOT Email LIKE '%\\_x@example.com' ORDER BY LastLoginDate DESC NULLS LAST, Id").unwrap();
        assert_eq!(q.order_by.len(), 2);
        assert!(!q.order_by[0].ascending && !q.order_by[0].nulls_first);
        assert!(q.order_by[1].ascending && q.order_by[1].nulls_first);
        let Some(Cond::Not(like)) = q.filter else {
            panic!()
        };
        assert_eq!(
            *like,
            Cond::Like(vec!["Email".into()], "%\\_x@example.com".into())
        );
        let q = parse("SELECT Id FROM User WHERE LastLoginDate < LAST_N_DAYS:90 OR CreatedDate >= 2026-01-31T10:00:00Z OR CreatedDate = TODAY").unwrap();
        let text = format!("{q:?}");
        assert!(
            text.contains("DateLiteral(\"LAST_N_DAYS\", Some(90))"),
            "{text}"
        );
        assert!(
            text.contains("DateTime(\"2026-01-31T10:00:00Z\")"),
            "{text}"
        );
        assert!(text.contains("DateLiteral(\"TODAY\", None)"), "{text}");
        for bad in [
            "SELECT COUNT(), Id FROM User",
            "SELECT Id FROM User WHERE Id IN (SELECT Id, Name FROM User)",
            "SELECT Id FROM User WHERE CreatedDate = LAST_N_DAYS",
            "SELECT Id FROM User WHERE CreatedDate = TODAY:3",
            "SELECT Id FROM User ORDER BY Id NULLS",
        ] {
            assert_eq!(parse(bad).unwrap_err().code, "MALFORMED_QUERY", "{bad}");
        }
    }

    #[test]
    fn like_matches_wildcards_case_insensitively() {
        assert!(like("Person001@Example.com", "person%@example.com"));
        assert!(like("abc", "a_c"));
        assert!(!like("abbc", "a_c"));
        assert!(like("a_c", "a\\_c"));
        assert!(!like("abc", "a\\_c"));
        assert!(like("100%", "100\\%"));
        assert!(like("anything", "%"));
        assert!(!like("ab", "abc%"));
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
