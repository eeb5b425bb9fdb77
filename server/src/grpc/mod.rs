//! The gRPC transport: maps proto messages to domain calls and domain errors to status codes.
//! Thin on purpose: validation and behaviour live in `params`, `engine` and `history`.

pub mod guard;
mod history;
mod log_stream;

use crate::auth::{Caller, Credential};
use crate::cgroup::{BasisSource, ContainerMemory, MemoryBasis};
use crate::engine::{Engine, PhaseProgress, State, StatusSnapshot};
use crate::error::EngineError;
use crate::history::HistoryError;
use crate::logs::{LogRecord, Operation};
use crate::params::{Phase, PhaseSpec, RunParams, Scope, StartSpec, Target, WorkloadKind};
use memstress_proto::v1 as pb;
use memstress_proto::v1::stress_service_server::StressService;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Deliberate mapping of every domain error to a gRPC status.
pub fn to_status(err: EngineError) -> Status {
    let msg = err.to_string();
    match err {
        EngineError::InvalidArgument { .. } => Status::invalid_argument(msg),
        EngineError::RunInProgress { .. } => Status::failed_precondition(msg),
        EngineError::WorkerSpawn(_) => Status::resource_exhausted(msg),
        EngineError::ShuttingDown => Status::unavailable(msg),
        EngineError::TooManyWatchers { .. } => Status::resource_exhausted(msg),
        EngineError::Unauthenticated { .. } => Status::unauthenticated(msg),
        EngineError::PermissionDenied { .. } => Status::permission_denied(msg),
        EngineError::RateLimited { .. } => Status::resource_exhausted(msg),
        // Only raised at startup (stressd refuses to start); mapped for completeness.
        EngineError::TokenFile { .. } => Status::failed_precondition(msg),
        EngineError::History(e) => match e {
            HistoryError::NotFound { .. } => Status::not_found(msg),
            HistoryError::InvalidArgument { .. } => Status::invalid_argument(msg),
            HistoryError::Storage(_) => Status::internal(msg),
            // Only raised at startup; never reaches a request, mapped for completeness.
            HistoryError::Locked { .. } => Status::failed_precondition(msg),
        },
    }
}

/// The `memstress.v1.StressService` implementation.
#[derive(Debug, Clone)]
pub struct StressApi {
    engine: Arc<Engine>,
    shutdown: watch::Receiver<bool>,
}

impl StressApi {
    /// A service over `engine`; streams end when `shutdown` turns true.
    pub fn new(engine: Arc<Engine>, shutdown: watch::Receiver<bool>) -> Self {
        Self { engine, shutdown }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Result<T, Status> {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| Status::internal(format!("control task failed: {e}")))
    }
}

fn scope_from_pb(v: i32) -> Result<Scope, Status> {
    match pb::Scope::try_from(v) {
        Ok(pb::Scope::Unspecified | pb::Scope::Process) => Ok(Scope::Process),
        Ok(pb::Scope::Container) => Ok(Scope::Container),
        Err(_) => Err(to_status(EngineError::invalid(
            "scope",
            v,
            "SCOPE_PROCESS (1) or SCOPE_CONTAINER (2)",
            "unknown scope",
        ))),
    }
}

fn scope_to_pb(s: Scope) -> pb::Scope {
    match s {
        Scope::Process => pb::Scope::Process,
        Scope::Container => pb::Scope::Container,
    }
}

fn workload_from_pb(v: i32) -> Result<WorkloadKind, Status> {
    match pb::Workload::try_from(v) {
        Ok(pb::Workload::Unspecified | pb::Workload::Tree) => Ok(WorkloadKind::Tree),
        Ok(pb::Workload::List) => Ok(WorkloadKind::List),
        Ok(pb::Workload::Hash) => Ok(WorkloadKind::Hash),
        Ok(pb::Workload::Matrix) => Ok(WorkloadKind::Matrix),
        Err(_) => Err(to_status(EngineError::invalid(
            "workload",
            v,
            "WORKLOAD_TREE (1), WORKLOAD_LIST (2), WORKLOAD_HASH (3) or WORKLOAD_MATRIX (4)",
            "unknown workload",
        ))),
    }
}

pub(crate) fn workload_to_pb(w: WorkloadKind) -> pb::Workload {
    match w {
        WorkloadKind::Tree => pb::Workload::Tree,
        WorkloadKind::List => pb::Workload::List,
        WorkloadKind::Hash => pb::Workload::Hash,
        WorkloadKind::Matrix => pb::Workload::Matrix,
    }
}

fn target_from_pb(t: pb::start_request::Target) -> Target {
    match t {
        pb::start_request::Target::MemoryMb(mb) => Target::MemoryMb(mb),
        pb::start_request::Target::MemoryPercent(p) => Target::Percent(p),
    }
}

fn phase_from_pb(p: &pb::Phase) -> PhaseSpec {
    PhaseSpec {
        target: p.target.map(|t| match t {
            pb::phase::Target::MemoryMb(mb) => Target::MemoryMb(mb),
            pb::phase::Target::MemoryPercent(p) => Target::Percent(p),
        }),
        hold_seconds: p.hold_seconds,
        ramp_mb_per_second: p.ramp_mb_per_second,
    }
}

fn phase_to_pb(p: &Phase) -> pb::Phase {
    pb::Phase {
        target: Some(match p.target {
            Target::MemoryMb(mb) => pb::phase::Target::MemoryMb(mb),
            Target::Percent(pc) => pb::phase::Target::MemoryPercent(pc),
        }),
        hold_seconds: p.hold_seconds,
        ramp_mb_per_second: p.ramp_mb_per_second,
    }
}

/// Proto request to domain spec (no range checks here: the domain does those).
pub fn spec_from_pb(req: &pb::StartRequest) -> Result<StartSpec, Status> {
    Ok(StartSpec {
        target: req.target.map(target_from_pb),
        duration_seconds: req.duration_seconds,
        log_interval_seconds: req.log_interval_seconds,
        payload_size_kb: req.payload_size_kb,
        ramp_mb_per_second: req.ramp_mb_per_second,
        search_rate: req.search_rate,
        keep_hot: req.keep_hot,
        huge_pages: req.huge_pages,
        scope: scope_from_pb(req.scope)?,
        allow_oom: req.allow_oom,
        workload: workload_from_pb(req.workload)?,
        phases: req.phases.iter().map(phase_from_pb).collect(),
        repeat: req.repeat,
    })
}

/// Domain parameters to proto; a profile's runs leave the single target unset (the phases
/// carry the targets).
pub(crate) fn params_to_pb(p: &RunParams) -> pb::RunParameters {
    let (memory_mb, memory_percent) = match (p.phases.is_empty(), p.target) {
        (false, _) => (None, None),
        (true, Target::MemoryMb(mb)) => (Some(mb), None),
        (true, Target::Percent(pc)) => (None, Some(pc)),
    };
    pb::RunParameters {
        memory_mb,
        memory_percent,
        duration_seconds: p.duration_seconds,
        log_interval_seconds: p.log_interval_seconds,
        payload_size_kb: p.payload_size_kb,
        ramp_mb_per_second: p.ramp_mb_per_second,
        search_rate: p.search_rate,
        keep_hot: p.keep_hot,
        huge_pages: p.huge_pages,
        scope: scope_to_pb(p.scope) as i32,
        allow_oom: p.allow_oom,
        workload: workload_to_pb(p.workload) as i32,
        phases: p.phases.iter().map(phase_to_pb).collect(),
        repeat: p.repeat,
    }
}

fn phase_progress_to_pb(p: &PhaseProgress) -> pb::PhaseProgress {
    pb::PhaseProgress {
        index: p.index,
        count: p.count,
        repetition: p.repetition,
        repeat: p.repeat,
        target_bytes: p.target_bytes,
    }
}

/// The process identity as sent in Status.
pub(crate) fn instance_to_pb(i: &crate::instance::Instance) -> pb::Instance {
    pb::Instance {
        instance_id: i.instance_id.clone(),
        hostname: i.hostname.clone(),
        pod_name: i.pod_name.clone(),
        pod_namespace: i.pod_namespace.clone(),
        node_name: i.node_name.clone(),
        started_at_unix_ms: i.started_at_unix_ms,
        version: i.version.clone(),
    }
}

pub(crate) fn basis_to_pb(b: &MemoryBasis) -> pb::MemoryBasis {
    pb::MemoryBasis {
        limit_bytes: b.limit_bytes,
        source: match b.source {
            BasisSource::CgroupV2 => pb::BasisSource::CgroupV2,
            BasisSource::CgroupV1 => pb::BasisSource::CgroupV1,
            BasisSource::DownwardApi => pb::BasisSource::DownwardApi,
            BasisSource::HostTotal => pb::BasisSource::HostTotal,
        } as i32,
        detail: b.detail.clone(),
    }
}

pub(crate) fn state_to_pb(s: State) -> pb::State {
    match s {
        State::Idle => pb::State::Idle,
        State::Building => pb::State::Building,
        State::Searching => pb::State::Searching,
        State::Completed => pb::State::Completed,
        State::Stopped => pb::State::Stopped,
        State::Failed => pb::State::Failed,
    }
}

fn op_to_pb(op: Operation) -> pb::Operation {
    match op {
        Operation::StressTestStart => pb::Operation::StressTestStart,
        Operation::BuildTreeStart => pb::Operation::BuildTreeStart,
        Operation::BuildTreeTarget => pb::Operation::BuildTreeTarget,
        Operation::BuildTreeComplete => pb::Operation::BuildTreeComplete,
        Operation::SearchTreeStart => pb::Operation::SearchTreeStart,
        Operation::SearchTreeProgress => pb::Operation::SearchTreeProgress,
        Operation::SearchTreeComplete => pb::Operation::SearchTreeComplete,
        Operation::StressTestComplete => pb::Operation::StressTestComplete,
        Operation::StressTestStopped => pb::Operation::StressTestStopped,
        Operation::StressTestError => pb::Operation::StressTestError,
        Operation::MemoryCleared => pb::Operation::MemoryCleared,
        Operation::LogEntriesMissed => pb::Operation::LogEntriesMissed,
        Operation::Notice => pb::Operation::Notice,
        Operation::PhaseStart => pb::Operation::PhaseStart,
    }
}

/// Domain log record to proto entry.
pub fn entry_to_pb(r: &LogRecord) -> pb::LogEntry {
    pb::LogEntry {
        sequence: r.sequence,
        timestamp_unix_ms: r.timestamp_ms,
        operation: op_to_pb(r.operation) as i32,
        memory_mb: r.memory_mb,
        message: r.message.to_string(),
        run_id: r.run_id.to_string(),
        missed: r.missed,
        working_set_mb: r.working_set_mb,
    }
}

fn container_to_pb(c: &ContainerMemory, oom_kills_during_run: u64) -> pb::ContainerMemory {
    pb::ContainerMemory {
        cgroup_version: c
            .version
            .map(|v| v.as_str().to_string())
            .unwrap_or_default(),
        cgroup_path: c.cgroup_path.clone(),
        limit_bytes: c.limit_bytes,
        usage_bytes: c.usage_bytes,
        working_set_bytes: c.working_set_bytes,
        oom_kills: c.oom_kills,
        pressure_some_avg10: c.pressure.map(|p| p.some_avg10),
        pressure_full_avg10: c.pressure.map(|p| p.full_avg10),
        pressure_some_total_us: c.pressure.map(|p| p.some_total_us),
        pressure_full_total_us: c.pressure.map(|p| p.full_total_us),
        oom_kills_during_run,
    }
}

/// The Status snapshot as the proto has it: field by field, nothing computed here.
pub(crate) fn status_to_pb(s: &StatusSnapshot) -> pb::StatusResponse {
    let run = s.run.as_ref();
    pb::StatusResponse {
        state: state_to_pb(s.state) as i32,
        run_id: run.map(|r| r.run_id.clone()).unwrap_or_default(),
        parameters: run.map(|r| params_to_pb(&r.params)),
        target_bytes: run.map_or(0, |r| r.target_bytes),
        nodes: run.map_or(0, |r| r.nodes),
        payload_bytes: run.map_or(0, |r| r.payload_bytes),
        rss_bytes: s.rss_bytes,
        peak_rss_bytes: s.peak_rss_bytes,
        basis: Some(basis_to_pb(&s.basis)),
        searches: run.map_or(0, |r| r.searches),
        searches_per_second: run.map_or(0.0, |r| r.searches_per_second),
        started_at_unix_ms: run.map_or(0, |r| r.started_at_ms),
        elapsed_ms: run.map_or(0, |r| r.elapsed_ms),
        remaining_ms: run.and_then(|r| r.remaining_ms),
        last_error: run.map(|r| r.last_error.clone()).unwrap_or_default(),
        fill_rate_mb_per_second: run.map_or(0.0, |r| r.fill_rate_mb_per_second),
        current_fill_rate_mb_per_second: run.map_or(0.0, |r| r.current_fill_rate_mb_per_second),
        time_to_target_ms: run.and_then(|r| r.time_to_target_ms),
        container: Some(container_to_pb(&s.container, s.oom_kills_during_run)),
        process_cpu_seconds: s.process_cpu_seconds,
        huge_page_bytes: run.map_or(0, |r| r.huge_page_bytes),
        previous_run: s.history.previous_run.as_ref().map(history::record_to_pb),
        history: Some(history::history_status_to_pb(&s.history.status)),
        workload: workload_to_pb(s.workload) as i32,
        activity_unit: s.activity_unit.into(),
        phase: run.and_then(|r| r.phase.as_ref()).map(phase_progress_to_pb),
        instance: Some(instance_to_pb(&s.instance)),
    }
}

/// Who made `request`, for the audit text: the caller the guard admitted, or — when the service
/// runs without the guard — the peer with no credential.
fn caller<T>(request: &Request<T>) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .copied()
        .unwrap_or(Caller {
            peer: request.remote_addr(),
            credential: Credential::None,
        })
}

type LogStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::LogEntry, Status>> + Send>>;

#[tonic::async_trait]
impl StressService for StressApi {
    async fn start(
        &self,
        request: Request<pb::StartRequest>,
    ) -> Result<Response<pb::StartResponse>, Status> {
        let caller = caller(&request);
        let spec = spec_from_pb(request.get_ref())?;
        let out = self
            .blocking(move |e| e.start(&spec, &caller))
            .await?
            .map_err(to_status)?;
        Ok(Response::new(pb::StartResponse {
            run_id: out.run_id,
            target_bytes: out.target_bytes,
            basis: Some(basis_to_pb(&out.basis)),
            parameters: Some(params_to_pb(&out.params)),
            previous_run_released_bytes: out.previous_run_released_bytes,
            phase_target_bytes: out.phase_target_bytes,
        }))
    }

    async fn stop(
        &self,
        request: Request<pb::StopRequest>,
    ) -> Result<Response<pb::StopResponse>, Status> {
        let caller = caller(&request);
        let out = self.blocking(move |e| e.stop(&caller)).await?;
        Ok(Response::new(pb::StopResponse {
            state: state_to_pb(out.state) as i32,
            stopped: out.stopped,
            run_id: out.run_id,
            message: out.message,
        }))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        // Cheap (atomics and a few small file reads), so no blocking-pool hop.
        Ok(Response::new(status_to_pb(&self.engine.status())))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        let req = request.into_inner();
        let (runs, next_cursor) = self
            .blocking(move |e| e.history().list(req.limit, &req.cursor))
            .await?
            .map_err(|e| to_status(e.into()))?;
        Ok(Response::new(pb::ListRunsResponse {
            runs: runs.iter().map(history::record_to_pb).collect(),
            next_cursor,
        }))
    }

    async fn get_run(
        &self,
        request: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::RunRecord>, Status> {
        let req = request.into_inner();
        let record = self
            .blocking(move |e| e.history().get(&req.run_id))
            .await?
            .map_err(|e| to_status(e.into()))?;
        Ok(Response::new(history::record_to_pb(&record)))
    }

    async fn clear(
        &self,
        request: Request<pb::ClearRequest>,
    ) -> Result<Response<pb::ClearResponse>, Status> {
        let caller = caller(&request);
        let out = self.blocking(move |e| e.clear(&caller)).await?;
        Ok(Response::new(pb::ClearResponse {
            released_bytes: out.released_bytes,
            rss_before_bytes: out.rss_before_bytes,
            rss_after_bytes: out.rss_after_bytes,
            nodes_released: out.nodes_released,
            stopped_running: out.stopped_running,
            duration_ms: out.duration_ms,
        }))
    }

    type WatchLogsStream = LogStream;

    async fn watch_logs(
        &self,
        request: Request<pb::WatchLogsRequest>,
    ) -> Result<Response<Self::WatchLogsStream>, Status> {
        let req = request.into_inner();
        // Refused past --max-watchers; the subscription holds the watcher's slot until the
        // pump ends (stream done, client gone or shutdown).
        let sub = self
            .engine
            .logs()
            .try_subscribe(req.from_sequence)
            .map_err(to_status)?;
        let (tx, rx) = mpsc::channel(log_stream::STREAM_QUEUE);
        let shutdown = self.shutdown.clone();
        tokio::spawn(log_stream::pump_logs(sub, req.follow, tx, shutdown));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
