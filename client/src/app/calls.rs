//! The unary calls as typed results, shared by the single-endpoint commands and the fleet.

use memstress_proto::v1::{
    ClearRequest, ClearResponse, GetRunRequest, RunRecord, StartRequest, StartResponse,
    StatusRequest, StatusResponse, StopRequest, StopResponse,
};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::Ctx;
use crate::cli::HistoryArgs;
use crate::error::CliError;
use crate::paging::{Listing, Pager};

/// What `history` got: one run in full, or a listing.
#[derive(Debug, Clone)]
pub(crate) enum HistoryReply {
    /// GetRun's answer.
    One(Box<RunRecord>),
    /// ListRuns' pages, gathered.
    List(Listing),
}

impl Ctx {
    /// Start.
    pub(crate) async fn start_call(&self, req: StartRequest) -> Result<StartResponse, CliError> {
        let mut client = self.client();
        self.call("Start", client.start(self.request(req))).await
    }

    /// Stop.
    pub(crate) async fn stop_call(&self) -> Result<StopResponse, CliError> {
        let mut client = self.client();
        self.call("Stop", client.stop(self.request(StopRequest {})))
            .await
    }

    /// Status.
    pub(crate) async fn status_call(&self) -> Result<StatusResponse, CliError> {
        let mut client = self.client();
        self.call("Status", client.status(self.request(StatusRequest {})))
            .await
    }

    /// Clear.
    pub(crate) async fn clear_call(&self) -> Result<ClearResponse, CliError> {
        let mut client = self.client();
        self.call("Clear", client.clear(self.request(ClearRequest {})))
            .await
    }

    /// `history`: one run in full (GetRun), or a listing paged through ListRuns.
    pub(crate) async fn history_call(&self, args: &HistoryArgs) -> Result<HistoryReply, CliError> {
        let mut client = self.client();
        if let Some(run_id) = &args.run_id {
            let req = GetRunRequest {
                run_id: run_id.clone(),
            };
            // NOT_FOUND (unknown or pruned run) is stressd's refusal: exit 1 with its message.
            let run = self
                .call("GetRun", client.get_run(self.request(req)))
                .await?;
            return Ok(HistoryReply::One(Box::new(run)));
        }
        let mut pager = Pager::new(args.want(), args.cursor.clone().unwrap_or_default());
        while let Some(req) = pager.next_request() {
            let page = self
                .call("ListRuns", client.list_runs(self.request(req)))
                .await?;
            pager.absorb(page);
        }
        Ok(HistoryReply::List(pager.finish()))
    }

    /// Health/Check of each service: (service, ServingStatus as i32), in order.
    pub(crate) async fn health_call(
        &self,
        services: Vec<String>,
    ) -> Result<Vec<(String, i32)>, CliError> {
        let mut client = HealthClient::new(self.channel());
        let mut checks = Vec::new();
        for service in services {
            let req = self.request(HealthCheckRequest {
                service: service.clone(),
            });
            let status = match self.call("Health/Check", client.check(req)).await {
                Ok(resp) => resp.status,
                // The health service answers NOT_FOUND for a name it does not know.
                Err(CliError::Rpc(s)) if s.code() == tonic::Code::NotFound => {
                    ServingStatus::ServiceUnknown as i32
                }
                Err(e) => return Err(e),
            };
            checks.push((service, status));
        }
        Ok(checks)
    }
}

/// The services of `checks` that are not SERVING ("(server)" for the empty name), or `None`
/// when all are.
pub(crate) fn not_serving(checks: &[(String, i32)]) -> Option<String> {
    let names: Vec<&str> = checks
        .iter()
        .filter(|(_, s)| *s != ServingStatus::Serving as i32)
        .map(|(name, _)| {
            if name.is_empty() {
                "(server)"
            } else {
                name.as_str()
            }
        })
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}
