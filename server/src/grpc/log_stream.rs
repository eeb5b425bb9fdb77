//! The WatchLogs pump: feeds one stream from a log [`Subscription`] — the kept history a page
//! at a time, then (with `follow`) live entries — until the client goes away, the replay ends
//! or the server shuts down. Its memory is one page and a short queue, whatever is kept.

use super::{entry_to_pb, to_status};
use crate::error::EngineError;
use crate::logs::{LogRecord, Subscription};
use memstress_proto::v1 as pb;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tonic::Status;

/// Entries queued per stream ahead of its client (the rest waits in the history or the
/// broadcast channel, shared by all watchers). Small, so a client that never reads pins a
/// few KiB, not the backlog.
pub(super) const STREAM_QUEUE: usize = 16;

/// How long the final UNAVAILABLE status may wait for room in a full stream queue.
const FINAL_STATUS_WAIT: Duration = Duration::from_millis(200);

/// The sending half of one WatchLogs stream.
pub(super) type LogTx = mpsc::Sender<Result<pb::LogEntry, Status>>;

/// Why a pump stopped before its stream was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// The client went away.
    Client,
    /// The server is shutting down.
    Shutdown,
}

/// Sends one entry unless the client went away or the server is shutting down.
///
/// Biased towards the send: when the channel has room the entry goes out even if shutdown
/// has begun; shutdown only wins over a watcher that is not keeping up.
async fn send(
    tx: &LogTx,
    shutdown: &mut watch::Receiver<bool>,
    entry: pb::LogEntry,
) -> Result<(), Cut> {
    tokio::select! {
        biased;
        r = tx.send(Ok(entry)) => r.map_err(|_| Cut::Client),
        _ = shutdown.wait_for(|s| *s) => Err(Cut::Shutdown),
    }
}

/// What a following watcher gets for one live receive (`Err` = that many entries missed by
/// lagging): `None` for an entry it already had from the history.
fn live_entry(received: Result<LogRecord, u64>, last: &mut u64) -> Option<pb::LogEntry> {
    match received {
        Ok(rec) if rec.sequence <= *last => None,
        Ok(rec) => {
            *last = rec.sequence;
            Some(entry_to_pb(&rec))
        }
        Err(missed) => Some(entry_to_pb(&LogRecord::missed(missed))),
    }
}

/// On shutdown, hands a following watcher what was logged before the signal (the engine has
/// already stopped the run, so its STRESS_TEST_STOPPED entry is among them), without waiting
/// on a watcher whose queue is full, and keeping the last slot for the final status.
fn flush_on_shutdown(live: &mut broadcast::Receiver<LogRecord>, tx: &LogTx, mut last: u64) {
    while tx.capacity() > 1 {
        let received = match live.try_recv() {
            Ok(rec) => Ok(rec),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Err(n),
            Err(_) => return,
        };
        if let Some(entry) = live_entry(received, &mut last)
            && tx.try_send(Ok(entry)).is_err()
        {
            return;
        }
    }
}

/// Ends a stream cut by shutdown with UNAVAILABLE "stressd is shutting down", so a client
/// tells it from a normal end. Waits briefly for room; a client that reads nothing never
/// gets it.
async fn end_on_shutdown(tx: &LogTx) {
    let status = Err(to_status(EngineError::ShuttingDown));
    if let Err(mpsc::error::TrySendError::Full(status)) = tx.try_send(status) {
        let _ = tokio::time::timeout(FINAL_STATUS_WAIT, tx.send(status)).await;
    }
}

/// Replays the kept history page by page. Returns the live receiver and the last sequence
/// sent once caught up with `follow`, `None` when a replay without `follow` is done.
async fn replay(
    sub: &mut Subscription,
    follow: bool,
    tx: &LogTx,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<(broadcast::Receiver<LogRecord>, u64)>, Cut> {
    let mut last = 0;
    loop {
        // The page is taken under the history lock and sent after it is released.
        let page = sub.next_page(follow);
        if page.missed > 0 {
            send(tx, shutdown, entry_to_pb(&LogRecord::missed(page.missed))).await?;
        }
        for rec in &page.entries {
            last = rec.sequence;
            send(tx, shutdown, entry_to_pb(rec)).await?;
        }
        if page.caught_up {
            return Ok(page.live.map(|live| (live, last)));
        }
    }
}

/// Follows live entries after the replay. A lagging watcher gets a "missed N" entry.
async fn follow_live(
    mut live: broadcast::Receiver<LogRecord>,
    mut last: u64,
    tx: &LogTx,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), Cut> {
    loop {
        let next = tokio::select! {
            biased;
            r = live.recv() => r,
            () = tx.closed() => return Err(Cut::Client),
            _ = shutdown.wait_for(|s| *s) => {
                flush_on_shutdown(&mut live, tx, last);
                return Err(Cut::Shutdown);
            }
        };
        let received = match next {
            Ok(rec) => Ok(rec),
            Err(broadcast::error::RecvError::Lagged(n)) => Err(n),
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        if let Some(entry) = live_entry(received, &mut last) {
            send(tx, shutdown, entry).await?;
        }
    }
}

/// Feeds one watcher until its replay is done (without `follow`), the client disconnects or
/// the server shuts down (then the stream ends with UNAVAILABLE). The subscription (and so
/// the watcher's slot) is dropped when this returns.
pub(super) async fn pump_logs(
    mut sub: Subscription,
    follow: bool,
    tx: LogTx,
    mut shutdown: watch::Receiver<bool>,
) {
    let outcome = match replay(&mut sub, follow, &tx, &mut shutdown).await {
        Ok(Some((live, last))) => follow_live(live, last, &tx, &mut shutdown).await,
        Ok(None) => Ok(()),
        Err(cut) => Err(cut),
    };
    if outcome == Err(Cut::Shutdown) {
        end_on_shutdown(&tx).await;
    }
}
