//! The domain's one error type. The gRPC layer maps each variant to a status code on purpose
//! (see `grpc::to_status`); nothing here knows about tonic.

/// Why the engine refused or could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A request field is out of range or inconsistent. Names the field, value and allowed range.
    #[error("{field} = {value} is invalid: {reason} (allowed: {allowed})")]
    InvalidArgument {
        /// Request field name as in the proto.
        field: &'static str,
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
    /// The run history refused or failed (unknown run, bad page request, storage).
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
}

impl EngineError {
    /// Shorthand for an out-of-range field.
    pub fn invalid(
        field: &'static str,
        value: impl ToString,
        allowed: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidArgument {
            field,
            value: value.to_string(),
            allowed: allowed.into(),
            reason: reason.into(),
        }
    }
}
