//! The one error type of this crate, keeping the gRPC status code and message.

use tonic::Code;

/// Errors of this crate: a status returned by the daemon, or a local failure (address,
/// connection, TLS files, arguments checked before sending, malformed replies).
///
/// Every variant has a gRPC [`code`](Error::code), so callers can branch on one thing:
///
/// ```
/// use bpfmap_client::Error;
/// let err = Error::from(tonic::Status::not_found("no map with id 7"));
/// assert!(err.is_not_found());
/// assert_eq!(err.to_string(), "NOT_FOUND: no map with id 7");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The daemon answered with a non-OK status.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(Box<tonic::Status>),
    /// The server address could not be parsed.
    #[error("invalid server address {addr:?}: {reason}")]
    BadAddress {
        /// The address as given.
        addr: String,
        /// Why it was refused.
        reason: String,
    },
    /// The connection could not be made.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address as given.
        addr: String,
        /// The transport error with its causes.
        reason: String,
    },
    /// TLS material could not be read or used.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// An argument was refused before anything was sent (wrong size, bad map reference...).
    #[error("{0}")]
    InvalidInput(String),
    /// The daemon's reply did not have the expected shape.
    #[error("unexpected reply from the daemon: {0}")]
    Protocol(String),
    /// The call (or a [`Fleet`](crate::Fleet) host's turn) ran past its deadline.
    #[error("no answer within the deadline of {0:?}")]
    DeadlineExceeded(std::time::Duration),
    /// Code run for one host of a [`Fleet`](crate::Fleet) panicked; the other hosts went on.
    #[error("the call panicked: {0}")]
    Panicked(String),
    /// A local file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::Status(Box::new(status))
    }
}

impl Error {
    /// The gRPC code: the daemon's for [`Error::Status`]; for local errors the code that
    /// fits (`INVALID_ARGUMENT` for refused input and addresses, `UNAVAILABLE` for
    /// connection failures, `INTERNAL` for malformed replies and I/O errors).
    pub fn code(&self) -> Code {
        match self {
            Error::Status(s) => s.code(),
            Error::BadAddress { .. } | Error::InvalidInput(_) | Error::Tls(_) => {
                Code::InvalidArgument
            }
            Error::Connect { .. } => Code::Unavailable,
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::Panicked(_) => Code::Internal,
            Error::Protocol(_) | Error::Io { .. } => Code::Internal,
        }
    }

    /// The message without the code: the daemon's message for a status, else the
    /// error's text.
    pub fn message(&self) -> String {
        match self {
            Error::Status(s) => s.message().to_owned(),
            other => other.to_string(),
        }
    }

    /// The daemon's status, when this error came from the daemon.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Error::Status(s) => Some(s),
            _ => None,
        }
    }

    /// True for `NOT_FOUND`: no such map, pin or key; past the last key; empty queue.
    pub fn is_not_found(&self) -> bool {
        self.code() == Code::NotFound
    }

    /// True for `ALREADY_EXISTS`: `Flag::NoExist` on an existing key, pin path taken.
    pub fn is_already_exists(&self) -> bool {
        self.code() == Code::AlreadyExists
    }

    /// True for `PERMISSION_DENIED`: the caller may not do this.
    pub fn is_permission_denied(&self) -> bool {
        self.code() == Code::PermissionDenied
    }

    /// True for `INVALID_ARGUMENT`, from the daemon or refused locally.
    pub fn is_invalid_argument(&self) -> bool {
        self.code() == Code::InvalidArgument
    }

    /// True for `FAILED_PRECONDITION`: frozen map, ambiguous name, wrong map state.
    pub fn is_failed_precondition(&self) -> bool {
        self.code() == Code::FailedPrecondition
    }

    /// True for `RESOURCE_EXHAUSTED`: map full, memlock or a configured limit reached.
    pub fn is_resource_exhausted(&self) -> bool {
        self.code() == Code::ResourceExhausted
    }

    /// True for `UNAVAILABLE`: the daemon could not be reached.
    pub fn is_unavailable(&self) -> bool {
        self.code() == Code::Unavailable
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// A gRPC code in its canonical upper-snake form, e.g. `NOT_FOUND`.
///
/// ```
/// assert_eq!(bpfmap_client::code_name(tonic::Code::FailedPrecondition), "FAILED_PRECONDITION");
/// ```
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The error chain of `err` joined with `": "`, for messages that must stand alone.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_follow_the_code() {
        let cases = [
            (Code::NotFound, Error::is_not_found as fn(&Error) -> bool),
            (Code::AlreadyExists, Error::is_already_exists),
            (Code::PermissionDenied, Error::is_permission_denied),
            (Code::InvalidArgument, Error::is_invalid_argument),
            (Code::FailedPrecondition, Error::is_failed_precondition),
            (Code::ResourceExhausted, Error::is_resource_exhausted),
            (Code::Unavailable, Error::is_unavailable),
        ];
        for (code, pred) in cases {
            let err = Error::from(tonic::Status::new(code, "m"));
            assert!(pred(&err), "{code:?}");
            assert_eq!(err.code(), code);
            assert_eq!(err.message(), "m");
            assert!(err.status().is_some());
            for (other, _) in cases.iter().filter(|(c, _)| *c != code) {
                let e = Error::from(tonic::Status::new(*other, "m"));
                assert!(!pred(&e), "{other:?} must not match {code:?}");
            }
        }
    }

    #[test]
    fn local_errors_have_codes() {
        assert!(Error::InvalidInput("x".into()).is_invalid_argument());
        let e = Error::Connect {
            addr: "a".into(),
            reason: "r".into(),
        };
        assert!(e.is_unavailable());
        assert_eq!(e.message(), "cannot connect to a: r");
        assert!(e.status().is_none());
    }
}
