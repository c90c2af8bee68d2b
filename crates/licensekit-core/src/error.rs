//! One error type for every provider, organised by meaning (object_store / OpenDAL style).
//!
//! Callers match on [`Error::kind`] (or the variants); vendor detail — HTTP status, vendor error
//! code, correlation id — stays in [`VendorError`], reachable through the source chain. No message
//! ever contains a secret: adapters build messages from ids and vendor error texts only.

use std::fmt;
use std::time::Duration;

use crate::kind::{InvalidProviderName, ProviderKind};

/// A boxed error usable as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, by meaning. Vendor detail is in the source chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The product, holder or route does not exist at the vendor.
    #[error("{provider}: {what} not found")]
    NotFound {
        /// The vendor that answered.
        provider: ProviderKind,
        /// What was looked up, by id (a product, a holder, a route).
        what: String,
        #[source]
        /// The vendor's own error, when it sent one.
        source: Option<BoxError>,
    },
    /// The change was a no-op: the holder already has (or already lacks) the license.
    #[error("{provider}: {what} is already in the requested state")]
    AlreadyInState {
        /// The vendor that answered.
        provider: ProviderKind,
        /// The product and holder of the no-op change, by id.
        what: String,
        #[source]
        /// The vendor's own error, when it sent one.
        source: Option<BoxError>,
    },
    /// Not enough free seats; free some or buy more.
    #[error(
        "{provider}: not enough seats on {product}: {requested} requested, {available} available; revoke unused seats or buy more"
    )]
    InsufficientSeats {
        /// The vendor that refused.
        provider: ProviderKind,
        /// The product, by id.
        product: String,
        /// Seats the change needed.
        requested: u64,
        /// Seats free at the vendor when it refused (0 when the vendor did not say).
        available: u64,
        #[source]
        /// The vendor's own error, when it sent one.
        source: Option<BoxError>,
    },
    /// The caller's input was rejected before (or by) the vendor; fix the input.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What is wrong with the input, for a person to read.
        message: String,
        #[source]
        /// The underlying parse or vendor error, when there is one.
        source: Option<BoxError>,
    },
    /// Credentials missing, wrong, expired or revoked.
    #[error("{provider}: authentication failed: {message}; check the credentials")]
    Unauthenticated {
        /// The vendor that refused.
        provider: ProviderKind,
        /// Why, as the vendor or the token endpoint said it (never a secret).
        message: String,
        #[source]
        /// The vendor's own error, when it sent one.
        source: Option<BoxError>,
    },
    /// Authenticated, but not allowed to do this.
    #[error("{provider}: permission denied: {message}")]
    PermissionDenied {
        /// The vendor that refused.
        provider: ProviderKind,
        /// What was denied, as the vendor said it.
        message: String,
        #[source]
        /// The vendor's own error, when it sent one.
        source: Option<BoxError>,
    },
    /// The vendor throttled us; `retry_after` is its requested delay when it gave one.
    #[error("{provider}: rate limited{}{}", RetryAfterSuffix(*.retry_after), VendorSaid(source.as_deref()))]
    RateLimited {
        /// The vendor that throttled.
        provider: ProviderKind,
        /// How long the vendor asked to wait (`Retry-After` or its own field); `None` when it gave no delay.
        retry_after: Option<Duration>,
        #[source]
        /// The vendor's own error, when it sent one (its message names the limit that was hit).
        source: Option<BoxError>,
    },
    /// A transient vendor-side failure (5xx, maintenance); trying later may succeed.
    #[error("{provider}: service unavailable: {message}; try again later")]
    Unavailable {
        /// The vendor that failed.
        provider: ProviderKind,
        /// What the vendor or the transport said.
        message: String,
        #[source]
        /// The vendor's own error, when it sent one.
        source: Option<BoxError>,
    },
    /// The provider cannot do this at all; refused before any I/O.
    #[error("{provider} does not support {operation}")]
    Unsupported {
        /// The vendor that cannot do it.
        provider: ProviderKind,
        /// The operation refused, e.g. `assign` or `list_assignments`.
        operation: String,
    },
    /// Our own configuration is incomplete or malformed.
    #[error("configuration error: {message}")]
    Config {
        /// What is missing or malformed, naming the setting.
        message: String,
        #[source]
        /// The underlying parse error, when there is one.
        source: Option<BoxError>,
    },
    /// The configuration names a provider whose adapter was not compiled in. `feature` is the
    /// cargo feature that compiles it in, as the registry that knows the vendor names it
    /// (`licensekit/genesys`).
    #[error(
        "provider {provider} is not compiled into this build; enable the cargo feature `{feature}`"
    )]
    FeatureNotEnabled {
        /// The vendor named by the configuration.
        provider: ProviderKind,
        /// The cargo feature to enable, e.g. `licensekit/genesys`.
        feature: &'static str,
    },
    /// The request could not be sent or the response not received.
    #[error("{provider}: transport error: {message}")]
    Transport {
        /// The vendor the request was for.
        provider: ProviderKind,
        /// What failed (connect, timeout, TLS), without secrets.
        message: String,
        #[source]
        /// The HTTP client's error.
        source: Option<BoxError>,
    },
    /// The response did not have the shape the vendor documents.
    #[error("{provider}: could not decode the response: {message}")]
    Decode {
        /// The vendor that answered.
        provider: ProviderKind,
        /// What did not match the documented shape.
        message: String,
        #[source]
        /// The parser's error.
        source: Option<BoxError>,
    },
    /// A listing was stopped: its pages formed a cycle, or went on beyond what the vendor's
    /// declared totals (plus slack) or the hard cap allow. Kind `Decode`: the server's paging
    /// is broken.
    #[error("{provider}: {route}: listing stopped at page {page}: {message}")]
    Pagination {
        /// The vendor that answered.
        provider: ProviderKind,
        /// The route listed, as the adapter names it.
        route: String,
        /// The page (1-based) at which the listing stopped.
        page: u64,
        /// Why: a repeated cursor, or more pages than the totals or the cap allow.
        message: String,
    },
    /// A vendor error with no more specific meaning.
    #[error(transparent)]
    Vendor(#[from] VendorError),
    /// The caller cancelled the run (Ctrl-C, a deadline) before this was sent; nothing was changed.
    #[error("{provider}: cancelled before it was sent; nothing was changed")]
    Cancelled {
        /// The vendor the change was for.
        provider: ProviderKind,
    },
    /// An error read back from a saved report or journal: its kind and message, as recorded.
    #[error("{message}")]
    Recorded {
        /// The kind as recorded.
        kind: ErrorKind,
        /// The message as recorded.
        message: String,
    },
    /// Retries ran out (attempts or total time); `last` is the final attempt's error.
    #[error("{provider}: gave up after {attempts} attempts in {elapsed:.1?}: {last}")]
    RetriesExhausted {
        /// The vendor called.
        provider: ProviderKind,
        /// Attempts made, the first included.
        attempts: u32,
        /// Wall time from the first attempt to giving up.
        elapsed: Duration,
        #[source]
        /// The final attempt's error; its kind is this error's kind.
        last: Box<Error>,
    },
}

struct RetryAfterSuffix(Option<Duration>);

impl fmt::Display for RetryAfterSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, "; retry after {:.1?}", d),
            None => Ok(()),
        }
    }
}

/// `: <the vendor's message>` when the source is a [`VendorError`]: which limit was hit (a daily
/// allowance, a burst) is worth telling the operator.
struct VendorSaid<'a>(Option<&'a (dyn std::error::Error + Send + Sync + 'static)>);

impl fmt::Display for VendorSaid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.and_then(|e| e.downcast_ref::<VendorError>()) {
            Some(v) if !v.message.is_empty() => write!(f, ": {}", v.message),
            _ => Ok(()),
        }
    }
}

/// The meaning of an [`Error`], for matching without caring about variant fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::AlreadyInState`].
    AlreadyInState,
    /// See [`Error::InsufficientSeats`].
    InsufficientSeats,
    /// See [`Error::InvalidInput`].
    InvalidInput,
    /// See [`Error::Unauthenticated`].
    Unauthenticated,
    /// See [`Error::PermissionDenied`].
    PermissionDenied,
    /// See [`Error::RateLimited`].
    RateLimited,
    /// See [`Error::Unavailable`].
    Unavailable,
    /// See [`Error::Unsupported`].
    Unsupported,
    /// See [`Error::Config`].
    Config,
    /// See [`Error::FeatureNotEnabled`].
    FeatureNotEnabled,
    /// See [`Error::Transport`]; retryable.
    Transport,
    /// See [`Error::Decode`]; also [`Error::Pagination`].
    Decode,
    /// See [`Error::Vendor`].
    Vendor,
    /// See [`Error::Cancelled`].
    Cancelled,
}

/// A malformed provider name given as input is [`Error::InvalidInput`].
impl From<InvalidProviderName> for Error {
    fn from(e: InvalidProviderName) -> Self {
        Error::InvalidInput {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

impl Error {
    /// The meaning of this error. For [`Error::RetriesExhausted`] it is the last attempt's meaning.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyInState { .. } => ErrorKind::AlreadyInState,
            Error::InsufficientSeats { .. } => ErrorKind::InsufficientSeats,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Unauthenticated { .. } => ErrorKind::Unauthenticated,
            Error::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Config { .. } => ErrorKind::Config,
            Error::FeatureNotEnabled { .. } => ErrorKind::FeatureNotEnabled,
            Error::Transport { .. } => ErrorKind::Transport,
            Error::Decode { .. } | Error::Pagination { .. } => ErrorKind::Decode,
            Error::Vendor(_) => ErrorKind::Vendor,
            Error::Cancelled { .. } => ErrorKind::Cancelled,
            Error::Recorded { kind, .. } => *kind,
            Error::RetriesExhausted { last, .. } => last.kind(),
        }
    }

    /// Whether trying the same call again later may succeed. False once retries ran out: the
    /// client layer already spent the retry budget.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Unavailable { .. } | Error::Transport { .. } => true,
            Error::Vendor(v) => v.status.is_some_and(|s| s == 429 || s >= 500),
            _ => false,
        }
    }

    /// Whether the request that failed with this error may still have been applied by the vendor:
    /// the answer was lost (transport failure after sending, timeout), unreadable (decode), or a
    /// server-side failure (5xx) that can come after the work was done. False for answers that
    /// say the request was refused (4xx, throttling, auth) and for errors raised before sending.
    /// The bulk engine reads the vendor's state back for these instead of guessing.
    pub fn may_have_been_applied(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Decode { .. } | Error::Unavailable { .. } => true,
            Error::Vendor(v) => v.status.is_some_and(|s| s >= 500),
            Error::RetriesExhausted { last, .. } => last.may_have_been_applied(),
            _ => false,
        }
    }

    /// The delay the vendor asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            Error::RetriesExhausted { last, .. } => last.retry_after(),
            _ => None,
        }
    }

    /// The vendor error behind this error, if one is in the source chain.
    pub fn vendor_error(&self) -> Option<&VendorError> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = current {
            if let Some(v) = err.downcast_ref::<VendorError>() {
                return Some(v);
            }
            current = err.source();
        }
        None
    }

    /// An [`Error::InvalidInput`] with no source.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Config`] with no source.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::NotFound`] for `what` (an id) at `provider`, with no source.
    pub fn not_found(provider: ProviderKind, what: impl Into<String>) -> Self {
        Error::NotFound {
            provider,
            what: what.into(),
            source: None,
        }
    }

    /// An [`Error::Unsupported`]: `provider` cannot do `operation` at all.
    pub fn unsupported(provider: ProviderKind, operation: impl Into<String>) -> Self {
        Error::Unsupported {
            provider,
            operation: operation.into(),
        }
    }

    /// An [`Error::Decode`]: the response from `provider` did not parse; `source` is the parser's error.
    pub fn decode(
        provider: ProviderKind,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Decode {
            provider,
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// A vendor's own error: HTTP status, vendor code and message, plus the correlation id a support
/// ticket should cite. Carried as the source of a meaning-level [`Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VendorError {
    /// The vendor that answered.
    pub provider: ProviderKind,
    /// HTTP status; `None` when the vendor reported the error inside a success response.
    pub status: Option<u16>,
    /// The vendor's error code (`errorNumber`, `errorCode`, `code`), as text.
    pub code: Option<String>,
    /// The vendor's message, cleaned of known secrets; may be empty.
    pub message: String,
    /// The vendor's request/correlation id, when it sent one.
    pub correlation_id: Option<String>,
}

impl VendorError {
    /// Vendor text is cleaned of every secret this process knows ([`redact`]): a vendor may echo
    /// the token it was sent.
    pub fn new(provider: ProviderKind, status: Option<u16>, message: impl Into<String>) -> Self {
        VendorError {
            provider,
            status,
            code: None,
            message: redact::redact(&message.into()),
            correlation_id: None,
        }
    }

    /// Sets the vendor's error code (cleaned of known secrets).
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(redact::redact(&code.into()));
        self
    }

    /// Sets the vendor's correlation id (cleaned of known secrets); `None` keeps none.
    pub fn with_correlation_id(mut self, id: Option<String>) -> Self {
        self.correlation_id = redact::redact_opt(id);
        self
    }
}

impl fmt::Display for VendorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered", self.provider)?;
        if let Some(status) = self.status {
            write!(f, " HTTP {status}")?;
        }
        if let Some(code) = &self.code {
            write!(f, " [{code}]")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(id) = &self.correlation_id {
            write!(f, " (correlation id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for VendorError {}

/// Secrets this process knows (client secrets, access tokens, static tokens), so that vendor
/// text — error bodies, error descriptions — can be cleaned of them before it reaches an error,
/// a log line or a report. A vendor that echoes the token it was sent back in an error body
/// would otherwise put it in the `--output` report verbatim (issue 13, item 8).
///
/// Credential code registers every secret it holds or receives ([`redact::register`]); code
/// that turns vendor text into an [`Error`] passes it through [`redact::redact`] first. The
/// registry is process-wide and bounded: the most recent [`redact::MAX_SECRETS`] secrets.
pub mod redact {
    use std::sync::{Mutex, MutexGuard};

    /// Secrets remembered at most (oldest forgotten first): enough for every token a long run
    /// refreshes, small enough that redaction stays cheap.
    pub const MAX_SECRETS: usize = 64;
    /// Shorter values are not registered: redacting every `a` or `1` from messages would
    /// destroy them and protect nothing.
    pub const MIN_LEN: usize = 6;
    /// What a secret is replaced with.
    pub const MARK: &str = "[REDACTED]";

    static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn secrets() -> MutexGuard<'static, Vec<String>> {
        SECRETS.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers `secret` so [`redact`] removes it from vendor text.
    pub fn register(secret: &str) {
        let secret = secret.trim();
        if secret.len() < MIN_LEN {
            return;
        }
        let mut all = secrets();
        if let Some(i) = all.iter().position(|s| s == secret) {
            let s = all.remove(i);
            all.push(s);
            return;
        }
        if all.len() >= MAX_SECRETS {
            all.remove(0);
        }
        all.push(secret.to_owned());
    }

    /// The longest registered secret, in bytes (so excerpts can take a window wide enough to
    /// see a whole secret that straddles their cut).
    pub fn longest() -> usize {
        secrets().iter().map(String::len).max().unwrap_or(0)
    }

    /// `text` with every registered secret replaced by [`MARK`].
    pub fn redact(text: &str) -> String {
        let all = secrets();
        let mut out = text.to_owned();
        // Longest first, so a secret containing another is removed whole.
        let mut sorted: Vec<&String> = all.iter().collect();
        sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in sorted {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MARK);
            }
        }
        out
    }

    /// [`redact`] applied to an optional text.
    pub fn redact_opt(text: Option<String>) -> Option<String> {
        text.map(|t| redact(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_looks_through_retries_exhausted() {
        let err = Error::RetriesExhausted {
            provider: ProviderKind::from_static("genesys"),
            attempts: 4,
            elapsed: Duration::from_secs(3),
            last: Box::new(Error::RateLimited {
                provider: ProviderKind::from_static("genesys"),
                retry_after: Some(Duration::from_secs(2)),
                source: None,
            }),
        };
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert!(!err.is_retryable(), "the retry budget is spent");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
        let text = err.to_string();
        assert!(text.contains("4 attempts"), "{text}");
        assert!(text.contains("3.0s"), "{text}");
    }

    #[test]
    fn vendor_error_is_found_in_the_source_chain() {
        let vendor = VendorError::new(
            ProviderKind::from_static("apple-vpp"),
            Some(200),
            "Invalid token",
        )
        .with_code("9622")
        .with_correlation_id(Some("abc".into()));
        let err = Error::Unauthenticated {
            provider: ProviderKind::from_static("apple-vpp"),
            message: "the location token was rejected".into(),
            source: Some(Box::new(vendor.clone())),
        };
        assert_eq!(err.vendor_error(), Some(&vendor));
        assert_eq!(
            vendor.to_string(),
            "apple-vpp answered HTTP 200 [9622]: Invalid token (correlation id abc)"
        );
    }

    #[test]
    fn feature_not_enabled_names_the_feature() {
        let text = Error::FeatureNotEnabled {
            provider: ProviderKind::from_static("toy"),
            feature: "facade/toy",
        }
        .to_string();
        assert!(
            text.contains("provider toy") && text.contains("`facade/toy`"),
            "{text}"
        );
    }

    #[test]
    fn registered_secrets_are_redacted_and_short_values_ignored() {
        redact::register("canary-redact-0001-longer");
        redact::register("canary-redact-0001");
        redact::register("abc");
        let text = redact::redact("echo canary-redact-0001-longer and canary-redact-0001 abc");
        assert_eq!(text, "echo [REDACTED] and [REDACTED] abc");
    }
}
