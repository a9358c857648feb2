//! The daemon's one error type, and the one place it becomes a `tonic::Status`.
//!
//! Handlers and the registry return [`Error`]. A raw [`KernelError`] is explained in the context
//! of the map and the operation by [`Error::kernel`] (an ENOENT is "key not found" for a
//! lookup but "queue is empty" for a pop), so that every message says what to do next.

use std::fmt;

use tonic::{Code, Status};

use crate::kernel::{KernelError, MapKind, Op, ENOTSUPP};

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed request: wrong sizes, bad hex, unknown type, missing field.
    #[error("{0}")]
    InvalidArgument(String),
    /// Map, pin or key not found; end of iteration; empty queue.
    #[error("{0}")]
    NotFound(String),
    /// Key or pin already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The map's state forbids it: frozen, ambiguous name.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Map full, memlock or a configured limit.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller has no identity at all.
    #[error("{0}")]
    Unauthenticated(String),
    /// The map changed too much under a walk to finish it consistently.
    #[error("{0}")]
    Aborted(String),
    /// The map type cannot do this operation from userspace.
    #[error("{op} is not supported on {kind} maps{hint}")]
    Unsupported {
        /// The map type's kernel name.
        kind: String,
        /// The operation.
        op: &'static str,
        /// What to do instead (starts with "; " when set).
        hint: String,
    },
    /// A kernel error with no better explanation: INTERNAL with the errno name.
    #[error("{context}: {source}")]
    Kernel {
        /// What the daemon was doing.
        context: String,
        /// The syscall and errno.
        source: KernelError,
    },
    /// A bug or an unexpected condition in the daemon.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A map as named in messages: `hash map stats_map (id 12)`.
#[derive(Debug, Clone)]
pub struct MapDesc {
    /// Kernel id.
    pub id: u32,
    /// Kernel name.
    pub name: String,
    /// Type.
    pub kind: MapKind,
    /// max_entries, for "full" messages.
    pub max_entries: u32,
}

impl fmt::Display for MapDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "{} map (id {})", self.kind.name(), self.id)
        } else {
            write!(f, "{} map {} (id {})", self.kind.name(), self.name, self.id)
        }
    }
}

/// Extra facts that change what an errno means.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelCtx<'a> {
    /// The key, formatted for messages (None for keyless operations).
    pub key: Option<&'a str>,
    /// The update flag: 1 NOEXIST, 2 EXIST.
    pub update_flag: u64,
    /// BPF_F_LOCK was asked for.
    pub lock: bool,
    /// The map is frozen (checked after an EPERM).
    pub frozen: bool,
}

impl Error {
    /// An operation the map type does not support.
    pub fn unsupported(kind: MapKind, op: Op) -> Error {
        let hint = match op {
            Op::Delete if kind.is_array() => "; array elements always exist: overwrite them with Update instead".to_owned(),
            Op::GetNextKey | Op::Lookup | Op::Dump if kind.is_keyless() => {
                "; use Lookup without a key to peek, LookupAndDelete without a key to pop, or Dump with delete to drain".to_owned()
            }
            Op::Lookup | Op::Update | Op::Delete | Op::Dump | Op::GetNextKey
                if matches!(kind.name().as_str(), "ringbuf" | "user_ringbuf") =>
            {
                "; ring buffers have no elements, they are read as a stream of records".to_owned()
            }
            _ => String::new(),
        };
        Error::Unsupported {
            kind: kind.name(),
            op: op.name(),
            hint,
        }
    }

    /// Explains a kernel error of `op` on `map`.
    pub fn kernel(map: &MapDesc, op: Op, ctx: KernelCtx<'_>, e: KernelError) -> Error {
        let key = ctx
            .key
            .map(|k| format!("key {k}"))
            .unwrap_or_else(|| "element".to_owned());
        match e.errno {
            libc::ENOENT => match op {
                Op::Pop | Op::Peek => Error::NotFound(format!("{map} is empty")),
                Op::GetNextKey => match ctx.key {
                    Some(k) => Error::NotFound(format!("no key after {k} in {map}: that was the last key")),
                    None => Error::NotFound(format!("{map} is empty: it has no first key")),
                },
                Op::Update if ctx.update_flag == 2 => {
                    Error::NotFound(format!("{key} not found in {map}: UPDATE_FLAG_EXIST only replaces existing keys"))
                }
                Op::Lookup if map.kind.0 == crate::kernel::types::num::BLOOM_FILTER => {
                    Error::NotFound(format!("value is not in {map} (a bloom filter: surely absent)"))
                }
                _ => Error::NotFound(format!("{key} not found in {map}")),
            },
            libc::EEXIST if op == Op::Update || op == Op::Push => {
                if map.kind.is_array() {
                    Error::AlreadyExists(format!(
                        "{key} already exists in {map}: array elements always exist, use UPDATE_FLAG_ANY or UPDATE_FLAG_EXIST"
                    ))
                } else {
                    Error::AlreadyExists(format!("{key} already exists in {map} (UPDATE_FLAG_NOEXIST)"))
                }
            }
            libc::E2BIG if map.kind.is_array() && op == Op::Update => Error::InvalidArgument(format!(
                "{key} is out of range for {map}: indexes go from 0 to {}",
                map.max_entries.saturating_sub(1)
            )),
            libc::E2BIG | libc::ENOSPC if matches!(op, Op::Update | Op::Push) => Error::ResourceExhausted(format!(
                "{map} is full: all {} entries are in use; delete entries{} or create a larger map",
                map.max_entries,
                if op == Op::Push { " (pop), push with UPDATE_FLAG_EXIST to overwrite the oldest," } else { "" }
            )),
            libc::EPERM | libc::EACCES if ctx.frozen && op == Op::Freeze => {
                Error::FailedPrecondition(format!("{map} is already frozen"))
            }
            libc::EPERM | libc::EACCES if ctx.frozen => {
                Error::FailedPrecondition(format!("{map} is frozen: userspace can no longer change it ({} refused)", op.name()))
            }
            libc::EPERM | libc::EACCES if matches!(op, Op::Update | Op::Delete | Op::Push | Op::Pop | Op::LookupAndDelete) => {
                Error::FailedPrecondition(format!(
                    "{map} refuses writes from userspace (frozen or created with BPF_F_RDONLY): {} refused",
                    op.name()
                ))
            }
            libc::EBUSY if op == Op::Freeze => Error::FailedPrecondition(format!("{map} is already frozen")),
            libc::EBUSY => Error::FailedPrecondition(format!("{map} is busy ({}): retry later", e.errno_name())),
            libc::EINVAL if ctx.lock => Error::InvalidArgument(format!(
                "lock=true needs a struct bpf_spin_lock in the value of {map} (described by BTF); this map has none"
            )),
            ENOTSUPP | libc::EOPNOTSUPP => Error::unsupported(map.kind, op),
            libc::EINVAL => Error::InvalidArgument(format!(
                "the kernel refused {} on {map}: EINVAL (invalid argument) for this map type",
                op.name()
            )),
            libc::ENOMEM => Error::ResourceExhausted(format!("out of kernel memory during {} on {map}", op.name())),
            _ => Error::Kernel { context: format!("{} on {map}", op.name()), source: e },
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = match &e {
            Error::InvalidArgument(_) | Error::Unsupported { .. } => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::ResourceExhausted(_) => Code::ResourceExhausted,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Aborted(_) => Code::Aborted,
            Error::Kernel { .. } | Error::Internal(_) => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

impl Error {
    /// Prefixes the message (e.g. "after 10 entries were written: ...").
    pub fn prefixed(self, prefix: &str) -> Error {
        match self {
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{prefix}{m}")),
            Error::NotFound(m) => Error::NotFound(format!("{prefix}{m}")),
            Error::AlreadyExists(m) => Error::AlreadyExists(format!("{prefix}{m}")),
            Error::FailedPrecondition(m) => Error::FailedPrecondition(format!("{prefix}{m}")),
            Error::ResourceExhausted(m) => Error::ResourceExhausted(format!("{prefix}{m}")),
            Error::PermissionDenied(m) => Error::PermissionDenied(format!("{prefix}{m}")),
            Error::Unauthenticated(m) => Error::Unauthenticated(format!("{prefix}{m}")),
            Error::Aborted(m) => Error::Aborted(format!("{prefix}{m}")),
            Error::Internal(m) => Error::Internal(format!("{prefix}{m}")),
            Error::Unsupported { kind, op, hint } => Error::Unsupported {
                kind,
                op,
                hint: format!("{hint} ({})", prefix.trim_end_matches([':', ' '])),
            },
            Error::Kernel { context, source } => Error::Kernel {
                context: format!("{prefix}{context}"),
                source,
            },
        }
    }

    /// Explains a failed BPF_MAP_CREATE.
    pub fn create_failed(kind: MapKind, what: &str, e: KernelError) -> Error {
        match e.errno {
            libc::EINVAL | libc::E2BIG | ENOTSUPP | libc::EOPNOTSUPP => Error::InvalidArgument(format!(
                "the kernel refused to create {what}: {} ({}); check the sizes and flags this map type needs",
                e.errno_name(),
                KernelErrorText(e)
            )),
            libc::ENOMEM | libc::EPERM => Error::ResourceExhausted(format!(
                "the kernel could not allocate {what}: {} (memory or memlock limit); try fewer entries",
                e.errno_name()
            )),
            libc::EBADF => Error::InvalidArgument(format!("inner_map is not usable as a template for {} maps", kind.name())),
            _ => Error::Kernel { context: format!("creating {what}"), source: e },
        }
    }
}

struct KernelErrorText(KernelError);

impl fmt::Display for KernelErrorText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.errno == ENOTSUPP {
            f.write_str("operation not supported for this map type and flags")
        } else {
            write!(f, "{}", std::io::Error::from_raw_os_error(self.0.errno))
        }
    }
}
