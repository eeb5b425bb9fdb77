//! End-to-end benchmark of `stressd`: drives the real release binary over gRPC, measures fill
//! rate against the kernel's raw first-touch rate (in the same run), target accuracy, release,
//! Stop and Status latency, start-up, leaks, map count, ramp fidelity, hold CPU, huge pages,
//! the cost of the run history and of `/metrics` scrapes, every workload against the tree's
//! bounds and a phase profile, then prints a table and writes JSON.
//! See BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release && cargo run --release -p memstress-server --example bench -- [--quick] [--out bench/results.json]
//! ```

#[path = "bench/control.rs"]
mod control;
#[path = "bench/daemon.rs"]
mod daemon;
#[path = "bench/fill.rs"]
mod fill;
#[path = "bench/history.rs"]
mod history;
#[path = "bench/http.rs"]
mod http;
#[path = "bench/kinds.rs"]
mod kinds;
#[path = "bench/lifecycle.rs"]
mod lifecycle;
#[path = "bench/metrics.rs"]
mod metrics;
#[path = "bench/phases.rs"]
mod phases;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/sampler.rs"]
mod sampler;
#[path = "bench/workload.rs"]
mod workload;

use clap::Parser;
use daemon::{Daemon, MIB};
use report::{Machine, Report, Row};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Error type of the benchmark: anything printable.
pub(crate) type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Benchmark of stressd (see BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Args {
    /// Fewer repetitions and smaller sizes (for development; not for BENCHMARKS.md).
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON results (relative paths are relative to the workspace root).
    #[arg(long, default_value = "bench/results.json")]
    out: PathBuf,
    /// Run only these row groups (comma-separated numbers 1-16; 1, 2, 4, 9 and 12 run together).
    #[arg(long, value_delimiter = ',')]
    only: Vec<u32>,
    /// stressd binary to measure (default: target/release/stressd beside this example).
    #[arg(long)]
    stressd: Option<PathBuf>,
    /// With --only: keep the other groups' rows of the existing JSON file (named as rows of
    /// an earlier run in `earlier_run`) instead of replacing the whole file.
    #[arg(long, requires = "only")]
    merge: bool,
}

/// State shared by the scenarios.
pub(crate) struct Ctx {
    /// The stressd binary.
    pub(crate) stressd: PathBuf,
    /// `--quick`.
    pub(crate) quick: bool,
    /// The long-lived stressd most rows use (history on: `--state-dir` in a temporary
    /// directory).
    pub(crate) d: Daemon,
    /// Its RSS right after start-up, before any run.
    pub(crate) idle_rss: u64,
    /// Its memory-map count at that moment.
    pub(crate) idle_maps: usize,
    /// (MiB, median seconds) of the largest fill measured, for timing random Stops.
    pub(crate) build_secs: Option<(u64, f64)>,
}

/// Progress line on stderr (the table goes to stdout).
pub(crate) fn progress(msg: &str) {
    eprintln!("  {msg}");
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}

fn sort_key(id: &str) -> (u32, String) {
    let digits: String = id.chars().take_while(char::is_ascii_digit).collect();
    (
        digits.parse().unwrap_or(u32::MAX),
        id[digits.len()..].to_string(),
    )
}

/// Runs one scenario; an error becomes a failed row and the shared stressd is cleared.
async fn section<'a, F, Fut>(ctx: &'a mut Ctx, rows: &mut Vec<Row>, id: &str, name: &str, f: F)
where
    F: FnOnce(&'a mut Ctx) -> Fut,
    Fut: Future<Output = Res<Vec<Row>>> + 'a,
{
    eprintln!("[{id}] {name}");
    let t0 = Instant::now();
    // The scenario borrows ctx for its whole run; on failure, clear over a fresh connection.
    let url = ctx.d.url.clone();
    match f(ctx).await {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("  error: {e}");
            rows.push(Row::error(id, name, &e.to_string()));
            if let Ok(mut c) = daemon::connect(&url).await {
                let _ = daemon::clear(&mut c).await;
            }
        }
    }
    eprintln!("  ({:.1} s)", t0.elapsed().as_secs_f64());
}

/// Spawns the long-lived stressd (history on) and reads its idle RSS and map count.
async fn start_ctx(stressd: &Path, quick: bool) -> Res<Ctx> {
    let mut d = daemon::spawn(stressd).await?;
    tokio::time::sleep(lifecycle::IDLE_SETTLE).await;
    let idle_rss = daemon::rss_of(d.pid)?;
    let idle_maps = daemon::maps_of(d.pid)?;
    // After the idle reading: the check is the first RPC stressd serves.
    let history = daemon::check_history(&mut d, daemon::History::On).await?;
    eprintln!(
        "stressd pid {} on {} (http {}, history in {}): idle RSS {:.2} MiB, {idle_maps} maps",
        d.pid,
        d.url,
        d.http,
        history.path,
        idle_rss as f64 / MIB as f64
    );
    Ok(Ctx {
        stressd: stressd.to_path_buf(),
        quick,
        d,
        idle_rss,
        idle_maps,
        build_secs: None,
    })
}

/// Runs the wanted row groups on `ctx` (the order keeps fresh-spawn rows 7 and 8 last).
async fn run_sections(ctx: &mut Ctx, want: impl Fn(u32) -> bool) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    if [1, 2, 4, 9, 12].iter().any(|g| want(*g)) {
        section(
            ctx,
            &mut rows,
            "1",
            "raw first-touch vs fill (rows 1, 2, 4, 9, 12)",
            fill::run,
        )
        .await;
    }
    if want(3) {
        section(ctx, &mut rows, "3", "accuracy", workload::accuracy).await;
    }
    if want(5) {
        section(ctx, &mut rows, "5", "stop during build", control::stop).await;
    }
    if want(6) {
        section(
            ctx,
            &mut rows,
            "6",
            "status latency during build",
            control::status_latency,
        )
        .await;
    }
    if want(10) {
        section(ctx, &mut rows, "10", "ramp", workload::ramp).await;
    }
    if want(11) {
        section(ctx, &mut rows, "11", "hold CPU", workload::hold_cpu).await;
    }
    if want(13) {
        section(
            ctx,
            &mut rows,
            "13",
            "fill with history on vs off",
            history::on_off,
        )
        .await;
    }
    if want(14) {
        section(
            ctx,
            &mut rows,
            "14a",
            "/metrics scrape latency during build",
            metrics::scrape_latency,
        )
        .await;
        section(
            ctx,
            &mut rows,
            "14d",
            "fill while /metrics is scraped",
            metrics::fill_while_scraped,
        )
        .await;
    }
    if want(15) {
        section(ctx, &mut rows, "15", "workloads", kinds::run).await;
    }
    if want(16) {
        section(ctx, &mut rows, "16", "phase profile", phases::run).await;
    }
    fresh_spawn_sections(ctx, &mut rows, want).await;
    rows
}

/// Rows 7 and 8, which spawn stressd processes of their own: last, so nothing runs beside them.
async fn fresh_spawn_sections(ctx: &mut Ctx, rows: &mut Vec<Row>, want: impl Fn(u32) -> bool) {
    if want(7) {
        section(ctx, rows, "7", "idle start-up", lifecycle::idle).await;
    }
    if want(8) {
        section(
            ctx,
            rows,
            "8",
            "leak over Start/Clear cycles",
            lifecycle::leak,
        )
        .await;
    }
}

async fn run(args: Args) -> Res<bool> {
    let t_total = Instant::now();
    let started_at = report::utc_now();
    let stressd = match args.stressd {
        Some(p) => p,
        None => daemon::locate_stressd()?,
    };
    if let Some(w) = daemon::staleness_warning(&stressd) {
        eprintln!("{w}");
    }
    let machine = Machine::probe();
    let mode = if args.quick { "quick" } else { "full" };
    eprintln!("memstress benchmark ({mode}) {started_at}");
    eprintln!("machine: {}", machine.line());
    eprintln!("stressd: {}", stressd.display());
    let want = |g: u32| args.only.is_empty() || args.only.contains(&g);

    let mut ctx = start_ctx(&stressd, args.quick).await?;
    let mut rows = run_sections(&mut ctx, want).await;
    drop(ctx);

    rows.sort_by_key(|r| sort_key(&r.id));
    let total = t_total.elapsed().as_secs_f64();
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.pass == Some(false))
        .map(|r| r.id.clone())
        .collect();
    let errors = rows
        .iter()
        .any(|r| r.unit.is_empty() && !r.measured.is_finite());

    println!();
    println!("memstress benchmark ({mode}), {started_at}, total {total:.0} s");
    println!("machine: {}", machine.line());
    println!();
    print!("{}", report::table(&rows));
    println!();
    if failed.is_empty() {
        println!("all bounds hold");
    } else {
        println!("bounds failed: {}", failed.join(", "));
    }

    let out = if args.out.is_absolute() {
        args.out
    } else {
        workspace_root().join(args.out)
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let doc = Report {
        benchmark: "memstress stressd (server/examples/bench.rs)",
        about: "Each row: `measured` (in `unit`) is checked against `bound` (kind at_most/at_least/below/abs_at_most/within_percent; null = reported only); `pass` is null without a bound; `samples` are the per-run values the measured number was taken from (median unless the name says p50/p99/max); `details` hold per-run breakdowns. Sizes in MiB = 2^20 bytes.",
        started_at_utc: started_at,
        quick: args.quick,
        total_seconds: total,
        stressd: stressd.display().to_string(),
        machine,
        failed,
        rows,
    };
    let mut doc = serde_json::to_value(&doc)?;
    if args.merge {
        merge_earlier(&mut doc, &out, &args.only)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&doc)? + "\n")?;
    println!("JSON written to {}", out.display());
    Ok(!errors)
}

/// Adds the rows of the groups not run now from the JSON already at `path` (with that run's
/// start, machine and binary under `earlier_run`), so a partial run updates its own rows only.
fn merge_earlier(doc: &mut serde_json::Value, path: &Path, only: &[u32]) -> Res<()> {
    let old: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let group = |id: &str| sort_key(id).0;
    let kept: Vec<serde_json::Value> = old["rows"]
        .as_array()
        .ok_or("the existing JSON has no rows")?
        .iter()
        .filter(|r| !only.contains(&group(r["id"].as_str().unwrap_or(""))))
        .cloned()
        .collect();
    let rows = doc["rows"].as_array_mut().ok_or("no rows")?;
    rows.extend(kept.iter().cloned());
    rows.sort_by_key(|r| sort_key(r["id"].as_str().unwrap_or("")));
    let failed: Vec<serde_json::Value> = rows
        .iter()
        .filter(|r| r["pass"] == serde_json::Value::Bool(false))
        .map(|r| r["id"].clone())
        .collect();
    doc["failed"] = failed.into();
    doc["earlier_run"] = serde_json::json!({
        "rows": kept.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(),
        "started_at_utc": old["started_at_utc"],
        "total_seconds": old["total_seconds"],
        "stressd": old["stressd"],
        "machine": old["machine"],
        "quick": old["quick"],
    });
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("bench: some rows could not be measured (see ERROR rows)");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
