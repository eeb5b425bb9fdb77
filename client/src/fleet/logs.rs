//! `logs` on many endpoints, and `logs --follow` merging every endpoint's stream in one
//! terminal: names re-resolved every few seconds (pods join and leave), broken streams
//! reconnected, and a restarted stressd (a new instance id) reported with the outcome of the
//! run it was in, then followed from its first entry.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write as _};
use std::time::Duration;

use memstress_proto::v1::{Instance, LogEntry, RunRecord};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::call::endpoint_name;
use super::colour::Painter;
use super::resolve::{self, display_addr};
use crate::app::{Ctx, Settings, StreamStop, interrupt_listener};
use crate::cli::OutputFormat;
use crate::error::CliError;
use crate::{json as j, text};

/// How often `dns:///` names are resolved again while following.
pub(crate) const RESOLVE_EVERY: Duration = Duration::from_secs(3);
/// Pause before reconnecting to an endpoint whose stream broke or that did not answer.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Every entry stressd still keeps from `from` on, then the end of the stream.
pub(crate) async fn kept_entries(ctx: &Ctx, from: u64) -> Result<Vec<LogEntry>, CliError> {
    let mut stream = ctx.watch(from, false).await?;
    let never = std::future::pending::<()>();
    let mut never = std::pin::pin!(never);
    let mut entries = Vec::new();
    loop {
        match ctx.next_entry(&mut stream, &mut never).await {
            Ok(e) => entries.push(e),
            Err(StreamStop::Ended | StreamStop::Interrupted) => return Ok(entries),
            Err(StreamStop::Failed(e)) => return Err(e),
        }
    }
}

/// Prints one entry of endpoint `name`: `NAME  <entry line>` (JSON: the entry with `endpoint`).
pub(crate) fn print_entry(
    output: OutputFormat,
    painter: &Painter,
    name: &str,
    width: usize,
    e: &LogEntry,
) -> io::Result<()> {
    match output {
        OutputFormat::Text => {
            // Every line of a wrapped entry carries the name, so a grep for a pod finds it all.
            let name = painter.name(name, width);
            let mut out = String::new();
            for line in text::log_entry_lines(e) {
                out.push_str(&format!("{name}  {line}\n"));
            }
            print_line(&out)
        }
        OutputFormat::Json => {
            let mut doc = j::log_entry(e);
            if let Value::Object(m) = &mut doc {
                m.insert("endpoint".to_owned(), Value::String(name.to_owned()));
            }
            print_doc(&doc)
        }
    }
}

/// Prints a note about endpoint `name` (not a log entry): `NAME  -- note`.
pub(crate) fn print_note(
    output: OutputFormat,
    painter: &Painter,
    name: &str,
    width: usize,
    note: &str,
) -> io::Result<()> {
    match output {
        OutputFormat::Text => print_line(&format!("{}  -- {note}\n", painter.name(name, width))),
        OutputFormat::Json => {
            print_doc(&json!({ "endpoint": name, "event": "note", "message": note }))
        }
    }
}

fn print_line(s: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()
}

fn print_doc(v: &Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// What an endpoint's watcher reports to the printer.
#[derive(Debug)]
enum Event {
    /// The watcher (re)connected and Status said who answers.
    Identified {
        addr: String,
        instance: Box<Instance>,
        previous_run: Option<Box<RunRecord>>,
    },
    /// A log entry.
    Entry { addr: String, entry: LogEntry },
    /// The endpoint stopped answering or its stream broke (reported once until it is back).
    Lost { addr: String, why: String },
}

/// The line reporting a restarted stressd: who, and how its previous run ended (from the run
/// history the new process read at start).
pub(crate) fn restart_note(name: &str, previous_run: Option<&RunRecord>) -> String {
    match previous_run {
        None => format!("pod {name} restarted (its run history has no finished run)"),
        Some(r) => {
            let mut s = format!(
                "pod {name} restarted; previous run {} {}",
                r.run_id,
                text::outcome(r.outcome, r.evidence)
            );
            // stressd's message often repeats "previous run ID" itself.
            let message = r.outcome_message.trim();
            let message = message
                .strip_prefix(&format!("previous run {} ", r.run_id))
                .unwrap_or(message);
            if !message.is_empty() {
                s.push_str(": ");
                s.push_str(message);
            }
            s
        }
    }
}

/// Whether an endpoint that answers with `now` restarted since it answered with `known`.
pub(crate) fn restarted(known: Option<&str>, now: &str) -> bool {
    known.is_some_and(|k| !k.is_empty() && !now.is_empty() && k != now)
}

/// Follows one endpoint until aborted: connect, identify, stream from the next sequence
/// number; on any failure report it once and try again.
async fn watch_endpoint(addr: String, settings: Settings, from: u64, tx: mpsc::Sender<Event>) {
    let mut next = from;
    let mut instance_id = String::new();
    let mut lost = false;
    loop {
        let attempt = async {
            let ctx = Ctx::connect(&addr, &settings).await?;
            let status = ctx.status_call().await?;
            Ok::<_, CliError>((ctx, status))
        };
        let (ctx, status) = match attempt.await {
            Ok(v) => v,
            Err(e) => {
                if !lost {
                    lost = true;
                    let _ = tx
                        .send(Event::Lost {
                            addr: addr.clone(),
                            why: e.to_string(),
                        })
                        .await;
                }
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        let instance = status.instance.unwrap_or_default();
        if restarted(Some(&instance_id), &instance.instance_id) {
            // A new process numbers its entries from 1 again: take all of them.
            next = 0;
        }
        instance_id = instance.instance_id.clone();
        let identified = Event::Identified {
            addr: addr.clone(),
            instance: Box::new(instance),
            previous_run: status.previous_run.map(Box::new),
        };
        if tx.send(identified).await.is_err() {
            return;
        }
        let why = match ctx.watch(next, true).await {
            Err(e) => e.to_string(),
            Ok(mut stream) => loop {
                match stream.message().await {
                    Ok(Some(entry)) => {
                        if entry.sequence > 0 {
                            next = entry.sequence + 1;
                        }
                        if tx
                            .send(Event::Entry {
                                addr: addr.clone(),
                                entry,
                            })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => break "its log stream ended".to_owned(),
                    Err(s) => {
                        let e = CliError::status(&addr, settings.timeout, s);
                        break format!("its log stream broke: {e}");
                    }
                }
            },
        };
        lost = true;
        let _ = tx
            .send(Event::Lost {
                addr: addr.clone(),
                why,
            })
            .await;
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// What the printer knows about one endpoint.
#[derive(Debug, Default)]
struct Known {
    name: String,
    instance_id: String,
}

/// The merged output: names, colours and alignment, and who answered before (to tell a
/// restart from a first contact).
struct Printer {
    output: OutputFormat,
    painter: Painter,
    known: HashMap<String, Known>,
    /// Instance ids by pod name: a pod keeps its name across a container restart but may
    /// come back on another address.
    pods: HashMap<String, String>,
    width: usize,
}

impl Printer {
    fn name(&self, addr: &str) -> String {
        self.known
            .get(addr)
            .map_or_else(|| display_addr(addr).to_owned(), |k| k.name.clone())
    }

    fn note(&self, name: &str, text: &str) -> io::Result<()> {
        print_note(self.output, &self.painter, name, self.width, text)
    }

    /// An endpoint (re)connected: "joined", "restarted" (with its previous run) or nothing.
    fn identified(
        &mut self,
        addr: String,
        instance: &Instance,
        previous_run: Option<&RunRecord>,
    ) -> io::Result<()> {
        let name = endpoint_name(&addr, Some(instance));
        self.width = self.width.max(name.chars().count());
        let known_id = self.known.get(&addr).map(|k| k.instance_id.clone());
        let by_pod = (!instance.pod_name.is_empty())
            .then(|| self.pods.get(&instance.pod_name).cloned())
            .flatten();
        let was = known_id.filter(|id| !id.is_empty()).or(by_pod);
        if restarted(was.as_deref(), &instance.instance_id) {
            self.note(&name, &restart_note(&name, previous_run))?;
        } else if !self.known.contains_key(&addr) {
            self.note(&name, "joined")?;
        }
        if !instance.pod_name.is_empty() {
            self.pods
                .insert(instance.pod_name.clone(), instance.instance_id.clone());
        }
        self.known.insert(
            addr,
            Known {
                name,
                instance_id: instance.instance_id.clone(),
            },
        );
        Ok(())
    }

    fn entry(&self, addr: &str, entry: &LogEntry) -> io::Result<()> {
        print_entry(
            self.output,
            &self.painter,
            &self.name(addr),
            self.width,
            entry,
        )
    }

    fn lost(&self, addr: &str, why: &str) -> io::Result<()> {
        let text = if self.known.contains_key(addr) {
            format!("lost ({why}); reconnecting")
        } else {
            format!("not reachable ({why}); retrying")
        };
        self.note(&self.name(addr), &text)
    }

    fn left(&mut self, addr: &str) -> io::Result<()> {
        let name = self.name(addr);
        self.known.remove(addr);
        self.note(&name, "left (no longer in DNS)")
    }
}

/// `logs --follow` on many endpoints, until Ctrl-C (exit 130).
pub(crate) async fn follow(
    addrs: &[String],
    settings: Settings,
    from: u64,
) -> Result<(), CliError> {
    let mut printer = Printer {
        output: settings.output,
        painter: Painter::for_stdout(),
        known: HashMap::new(),
        pods: HashMap::new(),
        width: 0,
    };
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let mut watchers: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
    let mut interrupt = interrupt_listener();
    let names = resolve::has_names(addrs);
    let mut tick = tokio::time::interval(RESOLVE_EVERY);
    eprintln!("Following the logs of {} (Ctrl-C stops).", addrs.join(", "));
    loop {
        tokio::select! {
            () = &mut interrupt => return Err(CliError::Interrupted),
            _ = tick.tick(), if names || watchers.is_empty() => {
                let r = resolve::resolve(addrs).await;
                for (spec, why) in &r.failures {
                    printer.note(spec, &format!("cannot resolve: {why}"))?;
                }
                for addr in &r.endpoints {
                    if !watchers.contains_key(addr) {
                        let task = watch_endpoint(addr.clone(), settings.clone(), from, tx.clone());
                        watchers.insert(addr.clone(), tokio::spawn(task));
                        printer.width = printer.width.max(display_addr(addr).chars().count());
                    }
                }
                let gone: Vec<String> =
                    watchers.keys().filter(|a| !r.endpoints.contains(a)).cloned().collect();
                for addr in gone {
                    if let Some(task) = watchers.remove(&addr) {
                        task.abort();
                    }
                    printer.left(&addr)?;
                }
            }
            Some(event) = rx.recv() => match event {
                Event::Identified { addr, instance, previous_run } => {
                    printer.identified(addr, &instance, previous_run.as_deref())?;
                }
                Event::Entry { addr, entry } => printer.entry(&addr, &entry)?,
                Event::Lost { addr, why } => printer.lost(&addr, &why)?,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memstress_proto::v1::{Evidence, Outcome};

    #[test]
    fn restarts_are_a_changed_instance_id() {
        assert!(!restarted(None, "a"));
        assert!(!restarted(Some(""), "a"));
        assert!(!restarted(Some("a"), "a"));
        assert!(restarted(Some("a"), "b"));
        assert!(!restarted(Some("a"), ""));
    }

    #[test]
    fn restart_note_names_the_previous_outcome() {
        assert_eq!(
            restart_note("web-1", None),
            "pod web-1 restarted (its run history has no finished run)"
        );
        let r = RunRecord {
            run_id: "run-3-abcdef".into(),
            outcome: Outcome::Killed as i32,
            evidence: Evidence::Unspecified as i32,
            outcome_message: "the process ended while the run was building".into(),
            ..RunRecord::default()
        };
        let note = restart_note("web-1", Some(&r));
        let mut repeated = r.clone();
        repeated.outcome_message = "previous run run-3-abcdef was killed at 9.0 MiB".into();
        assert_eq!(
            restart_note("web-1", Some(&repeated)),
            "pod web-1 restarted; previous run run-3-abcdef killed: was killed at 9.0 MiB"
        );
        assert!(
            note.starts_with("pod web-1 restarted; previous run run-3-abcdef killed"),
            "{note}"
        );
        assert!(
            note.ends_with(": the process ended while the run was building"),
            "{note}"
        );
    }
}
