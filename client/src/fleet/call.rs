//! One call on every endpoint: connect, identify, call, in parallel with bounded concurrency;
//! and how the endpoints' results add up to one exit code.

use std::future::Future;

use futures_util::StreamExt as _;
use futures_util::stream;
use memstress_proto::v1::Instance;

use super::resolve::display_addr;
use crate::app::{Ctx, Settings};
use crate::error::{CliError, EXIT_FAILURE, EXIT_PARTIAL, EXIT_UNREACHABLE};

/// Most endpoints talked to at once.
pub(crate) const CONCURRENCY: usize = 32;

/// One endpoint's answer.
#[derive(Debug)]
pub(crate) struct Reply<T> {
    /// The address called (`http://IP:PORT`), or the `--addr` that did not resolve.
    pub(crate) addr: String,
    /// Who answered, when a Status said so.
    pub(crate) instance: Option<Instance>,
    /// The call's result.
    pub(crate) result: Result<T, CliError>,
}

impl<T> Reply<T> {
    /// How the endpoint is shown: see [`endpoint_name`].
    pub(crate) fn name(&self) -> String {
        endpoint_name(&self.addr, self.instance.as_ref())
    }
}

/// An endpoint's name: its pod name where stressd knows it (the downward API gave it one),
/// else its address.
pub(crate) fn endpoint_name(addr: &str, instance: Option<&Instance>) -> String {
    match instance {
        Some(i) if !i.pod_name.is_empty() => i.pod_name.clone(),
        _ => display_addr(addr).to_owned(),
    }
}

/// Connects to every endpoint and runs `op` on each, [`CONCURRENCY`] at a time, each bounded
/// by `--timeout` (connecting and every call). Replies come back in the order of `endpoints`.
pub(crate) async fn fan_out<T, F, Fut>(
    endpoints: &[String],
    settings: &Settings,
    op: F,
) -> Vec<Reply<T>>
where
    F: Fn(Ctx) -> Fut,
    Fut: Future<Output = (Option<Instance>, Result<T, CliError>)>,
{
    let op = &op;
    stream::iter(endpoints.iter().cloned())
        .map(|addr| async move {
            match Ctx::connect(&addr, settings).await {
                Err(e) => Reply {
                    addr,
                    instance: None,
                    result: Err(e),
                },
                Ok(ctx) => {
                    let (instance, result) = op(ctx).await;
                    Reply {
                        addr,
                        instance,
                        result,
                    }
                }
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await
}

/// Asks Status who answers (for the endpoint's name; a refused or failed Status leaves it
/// unnamed) while `call` runs on the same connection, so an endpoint costs one `--timeout`
/// for its calls, not two.
pub(crate) async fn identified<T>(
    ctx: &Ctx,
    call: impl Future<Output = Result<T, CliError>>,
) -> (Option<Instance>, Result<T, CliError>) {
    let (status, result) = tokio::join!(ctx.status_call(), call);
    (status.ok().and_then(|s| s.instance), result)
}

/// How one endpoint fared, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fared {
    /// The call succeeded.
    Ok,
    /// stressd answered, with a refusal or a failure (exit 1 on its own).
    Failed,
    /// stressd could not be reached (exit 2 on its own).
    Unreachable,
}

impl Fared {
    /// How a failure counts.
    pub(crate) fn of(err: &CliError) -> Self {
        if err.exit_code() == EXIT_UNREACHABLE {
            Fared::Unreachable
        } else {
            Fared::Failed
        }
    }
}

/// The exit code of a command on many endpoints: 0 when every one succeeded, 2 when none
/// could be reached, 1 when every one was reached and failed, else 4 (some failed).
pub(crate) fn exit_code(fared: &[Fared]) -> u8 {
    let count = |f: Fared| fared.iter().filter(|x| **x == f).count();
    let (ok, failed, unreachable) = (
        count(Fared::Ok),
        count(Fared::Failed),
        count(Fared::Unreachable),
    );
    if failed == 0 && unreachable == 0 {
        0
    } else if ok == 0 && failed == 0 {
        EXIT_UNREACHABLE
    } else if ok == 0 && unreachable == 0 {
        EXIT_FAILURE
    } else {
        EXIT_PARTIAL
    }
}

/// The command's result from how each endpoint fared: `Ok` when all succeeded, else
/// [`CliError::Fleet`] with the exit code of [`exit_code`].
pub(crate) fn conclude(fared: &[Fared]) -> Result<(), CliError> {
    match exit_code(fared) {
        0 => Ok(()),
        code => Err(CliError::Fleet {
            failed: fared.iter().filter(|f| **f != Fared::Ok).count(),
            total: fared.len(),
            code,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use Fared::*;

    #[test]
    fn exit_codes_add_up() {
        assert_eq!(exit_code(&[Ok, Ok, Ok]), 0);
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(&[Ok, Unreachable, Ok]), EXIT_PARTIAL);
        assert_eq!(exit_code(&[Ok, Failed]), EXIT_PARTIAL);
        assert_eq!(exit_code(&[Unreachable, Unreachable]), EXIT_UNREACHABLE);
        assert_eq!(exit_code(&[Failed, Failed]), EXIT_FAILURE);
        assert_eq!(exit_code(&[Failed, Unreachable]), EXIT_PARTIAL);
        assert_eq!(EXIT_PARTIAL, 4);
        let e = conclude(&[Ok, Unreachable, Ok]).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert_eq!(e.to_string(), "1 of 3 endpoints failed (see their rows)");
        assert!(conclude(&[Ok]).is_ok());
    }

    #[test]
    fn endpoints_are_named_by_pod_else_address() {
        let mut i = Instance {
            pod_name: "stress-7d9f-x2".into(),
            hostname: "h".into(),
            ..Instance::default()
        };
        assert_eq!(
            endpoint_name("http://10.1.2.3:50051", Some(&i)),
            "stress-7d9f-x2"
        );
        i.pod_name.clear();
        assert_eq!(
            endpoint_name("http://10.1.2.3:50051", Some(&i)),
            "10.1.2.3:50051"
        );
        assert_eq!(
            endpoint_name("http://10.1.2.3:50051", None),
            "10.1.2.3:50051"
        );
        assert_eq!(endpoint_name("dns:///x:1", None), "dns:///x:1");
    }
}
