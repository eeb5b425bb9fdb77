//! The domain's one error type. The gRPC layer maps each variant to a status code on purpose
//! (see `grpc::to_status`); nothing here knows about tonic.

use std::borrow::Cow;

/// Why the engine refused or could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A request field is out of range or inconsistent. Names the field, value and allowed range.
    #[error("{field} = {value} is invalid: {reason} (allowed: {allowed})")]
    InvalidArgument {
        /// Request field name as in the proto (a path such as `phases[2].memory_mb` inside a
        /// repeated field).
        field: Cow<'static, str>,
        /// The value received.
        value: String,
        /// The allowed range or set.
        allowed: String,
        /// Why it is refused.
        reason: String,
    },
    /// A run is building or holding; only one runs at a time.
    #[error("run {run_id} is {state}; stop it first (Stop RPC or `stressctl stop`)")]
    RunInProgress {
        /// The running run.
        run_id: String,
        /// Its state.
        state: &'static str,
    },
    /// The OS refused a new thread for the workload.
    #[error("could not start the workload thread: {0}")]
    WorkerSpawn(std::io::Error),
    /// The server is shutting down and takes no new runs.
    #[error("stressd is shutting down")]
    ShuttingDown,
    /// `--max-watchers` WatchLogs streams are already being served.
    #[error(
        "too many log watchers: {limit} WatchLogs streams are already open, the most this \
         stressd serves (--max-watchers / STRESSD_MAX_WATCHERS = {limit})"
    )]
    TooManyWatchers {
        /// The limit.
        limit: usize,
    },
    /// The run history refused or failed (unknown run, bad page request, storage).
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    /// Authentication is on and the call carries no valid token: says how to pass one.
    #[error(
        "{rpc} needs a token and the call has {reason}: send the metadata \
         \"authorization: Bearer <token>\" (stressctl --token-file PATH or STRESSCTL_TOKEN; \
         grpcurl -H 'authorization: Bearer <token>')"
    )]
    Unauthenticated {
        /// The RPC called.
        rpc: String,
        /// What was wrong with the `authorization` metadata (e.g. "no credential").
        reason: &'static str,
    },
    /// The read token was used for a mutating RPC.
    #[error(
        "{rpc} needs the admin token (--auth-token-file); the read token allows only Status, \
         WatchLogs, ListRuns and GetRun"
    )]
    PermissionDenied {
        /// The RPC called.
        rpc: String,
    },
    /// A client made mutating calls faster than `--rate-limit` / `--rate-burst` allow.
    #[error(
        "rate limit: {per_second} mutating calls/s per client (burst {burst}); retry in \
         {retry_after_ms} ms"
    )]
    RateLimited {
        /// `--rate-limit`.
        per_second: u32,
        /// `--rate-burst`.
        burst: u32,
        /// How long until the client's next call is admitted.
        retry_after_ms: u64,
    },
    /// A token file cannot be used at startup (unreadable, empty, or not header-safe).
    #[error("{flag} {path}: {reason}")]
    TokenFile {
        /// The flag that named the file.
        flag: &'static str,
        /// The path given.
        path: String,
        /// Why it is refused.
        reason: String,
    },
}

impl EngineError {
    /// Shorthand for an out-of-range field.
    pub fn invalid(
        field: impl Into<Cow<'static, str>>,
        value: impl ToString,
        allowed: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            value: value.to_string(),
            allowed: allowed.into(),
            reason: reason.into(),
        }
    }

    /// The same refusal about an element of a repeated field: `memory_mb` becomes
    /// `phases[2].memory_mb`, so the client knows which entry was refused.
    #[must_use]
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::InvalidArgument {
                field,
                value,
                allowed,
                reason,
            } => Self::InvalidArgument {
                field: Cow::Owned(format!("{prefix}.{field}")),
                value,
                allowed,
                reason,
            },
            other => other,
        }
    }
}
