//! Rows 1, 2, 4, 9 and 12: the kernel's raw first-touch rate, stressd's fill rate with and
//! without huge pages (interleaved so all three see the same machine conditions), the release
//! after Clear, and the memory-map count at scale.

use crate::daemon::{self, Daemon, MIB, anon_huge_of, maps_of, rss_of};
use crate::report::{Bound, Row, fmt_num, max, median, size_name};
use crate::sampler::Sampler;
use crate::{Ctx, Res, progress};
use memstress_proto::v1 as pb;
use serde_json::json;
use std::time::{Duration, Instant};

/// The engine stops once the deficit is under one page: "reached" means within a page.
const REACHED_SLACK: u64 = 4096;
/// How long after SEARCHING the "steady" RSS is read.
const STEADY_AFTER: Duration = Duration::from_millis(300);
/// Release bound: RSS after Clear within this of the idle RSS...
const RELEASE_SLACK: u64 = 4 * MIB;
/// ...within this long.
const RELEASE_WITHIN: Duration = Duration::from_secs(1);

/// What one timed build measured.
#[derive(Debug, Clone)]
pub(crate) struct FillRun {
    /// Target bytes (memory_mb × MiB).
    pub(crate) target: u64,
    /// RSS just before Start.
    pub(crate) rss_before: u64,
    /// When Start was sent (the clock `own_secs` starts from).
    pub(crate) started: Instant,
    /// Start sent → RSS within a page of the target, from our own 1 ms samples.
    pub(crate) own_secs: f64,
    /// Whether RSS reached target − 1 page (false: `own_secs` is the time to the plateau).
    pub(crate) reached: bool,
    /// Status.time_to_target_ms.
    pub(crate) status_ttt_ms: Option<u64>,
    /// RSS 300 ms after SEARCHING was seen.
    pub(crate) steady_rss: u64,
    /// Lines of /proc/<pid>/maps at steady state.
    pub(crate) maps: usize,
    /// Status.huge_page_bytes at steady state.
    pub(crate) huge_page_bytes: u64,
    /// AnonHugePages from smaps_rollup at steady state.
    pub(crate) anon_huge_bytes: u64,
    /// Status.nodes.
    pub(crate) nodes: u64,
    /// Status.fill_rate_mb_per_second (stressd's own average).
    pub(crate) status_fill_rate: f64,
}

impl FillRun {
    /// target / time, MiB/s (the row-2 definition).
    pub(crate) fn rate(&self) -> f64 {
        self.target as f64 / MIB as f64 / self.own_secs
    }

    /// Per-run details for the JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        json!({
            "target_mib": self.target / MIB,
            "rss_before_mib": self.rss_before as f64 / MIB as f64,
            "own_time_ms": self.own_secs * 1e3,
            "rate_mib_s": self.rate(),
            "growth_rate_mib_s": (self.target.saturating_sub(self.rss_before)) as f64 / MIB as f64 / self.own_secs,
            "reached_target": self.reached,
            "status_time_to_target_ms": self.status_ttt_ms,
            "status_fill_rate_mib_s": self.status_fill_rate,
            "steady_rss_minus_target_mib": (self.steady_rss as f64 - self.target as f64) / MIB as f64,
            "maps": self.maps,
            "nodes": self.nodes,
            "status_huge_page_bytes": self.huge_page_bytes,
            "anon_huge_bytes": self.anon_huge_bytes,
        })
    }
}

/// Starts `req` (target `target` bytes) and times it until RSS reaches the target, sampling
/// RSS every 1 ms from just before Start is sent. Leaves the run holding (SEARCHING).
pub(crate) async fn fill_once(d: &mut Daemon, req: pb::StartRequest, target: u64) -> Res<FillRun> {
    let rss_before = rss_of(d.pid)?;
    let sampler = Sampler::start(d.pid, Duration::from_millis(1))?;
    let t0 = Instant::now();
    let started = daemon::start(&mut d.client, req).await;
    let searching = match started {
        Ok(_) => daemon::wait_searching(&mut d.client, Duration::from_secs(120))
            .await
            .map(|_| Instant::now()),
        Err(e) => Err(e),
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let samples = sampler.finish();
    let seen_searching = searching?;
    let (reached, t_reach) = match samples.first_at_least(t0, target - REACHED_SLACK) {
        Some((t, _)) => (true, t),
        None => {
            let plateau = samples.max().saturating_sub(REACHED_SLACK);
            let t = samples
                .first_at_least(t0, plateau)
                .map_or(seen_searching, |p| p.0);
            (false, t)
        }
    };
    let own_secs = t_reach.duration_since(t0).as_secs_f64();
    tokio::time::sleep(STEADY_AFTER.saturating_sub(seen_searching.elapsed())).await;
    let steady_rss = rss_of(d.pid)?;
    let maps = maps_of(d.pid)?;
    let anon_huge_bytes = anon_huge_of(d.pid).unwrap_or(0);
    let st = daemon::status(&mut d.client).await?;
    Ok(FillRun {
        target,
        rss_before,
        started: t0,
        own_secs,
        reached,
        status_ttt_ms: st.time_to_target_ms,
        steady_rss,
        maps,
        huge_page_bytes: st.huge_page_bytes,
        anon_huge_bytes,
        nodes: st.nodes,
        status_fill_rate: st.fill_rate_mb_per_second,
    })
}

/// One unmeasured fill of `mb` MiB and its Clear. Row groups that compare variants start with
/// it, so their first measured fill does not alone pay for memory the hypervisor took back
/// while the machine was idle (see BENCHMARKS.md, free page reporting).
pub(crate) async fn warm_up(d: &mut Daemon, mb: u64) -> Res<()> {
    daemon::start(&mut d.client, daemon::start_request(mb, 100)).await?;
    daemon::wait_searching(&mut d.client, Duration::from_secs(120)).await?;
    daemon::clear(&mut d.client).await?;
    Ok(())
}

/// What a Clear and the release after it measured.
#[derive(Debug, Clone)]
pub(crate) struct Release {
    /// Clear RPC latency, ms.
    pub(crate) clear_ms: f64,
    /// RSS when it first came within the slack of idle, or at the 1 s deadline.
    pub(crate) rss_after: u64,
    /// Time from sending Clear to RSS within the slack (None: not within 1 s).
    pub(crate) within_ms: Option<f64>,
    /// ClearResponse.duration_ms (stressd's own freeing time).
    pub(crate) server_ms: u64,
}

/// Sends Clear and polls RSS every 1 ms until it is within 4 MiB of `idle` or 1 s passed.
pub(crate) async fn clear_and_watch(d: &mut Daemon, idle: u64) -> Res<Release> {
    let t0 = Instant::now();
    let resp = daemon::clear(&mut d.client).await?;
    let clear_ms = t0.elapsed().as_secs_f64() * 1e3;
    let pid = d.pid;
    let (rss_after, within_ms) = tokio::task::spawn_blocking(move || -> Res<(u64, Option<f64>)> {
        loop {
            let rss = rss_of(pid)?;
            let el = t0.elapsed();
            if rss <= idle + RELEASE_SLACK {
                return Ok((rss, Some(el.as_secs_f64() * 1e3)));
            }
            if el >= RELEASE_WITHIN {
                return Ok((rss, None));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
    .await??;
    Ok(Release {
        clear_ms,
        rss_after,
        within_ms,
        server_ms: resp.duration_ms,
    })
}

/// Maps `bytes` of anonymous memory and writes one byte per 4 KiB page: the kernel's
/// first-touch rate. Returns seconds (mmap + touch; munmap not timed).
pub(crate) fn raw_first_touch(bytes: usize) -> Res<f64> {
    let t0 = Instant::now();
    // SAFETY: anonymous private mapping; arguments valid by construction.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!(
            "mmap of {bytes} bytes failed: {}",
            std::io::Error::last_os_error()
        )
        .into());
    }
    let base = p.cast::<u8>();
    let mut off = 0;
    while off < bytes {
        // SAFETY: off < bytes, inside the mapping.
        unsafe { std::ptr::write_volatile(base.add(off), 1) };
        off += 4096;
    }
    let secs = t0.elapsed().as_secs_f64();
    // SAFETY: exactly the mapping returned above, no longer used.
    unsafe {
        libc::munmap(p, bytes);
    }
    Ok(secs)
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Raw,
    Fill,
    Huge,
}

#[derive(Default)]
struct PerSize {
    raw: Vec<f64>,
    fill: Vec<FillRun>,
    huge: Vec<FillRun>,
    release: Vec<Release>,
}

/// Rows 1, 2, 4, 9, 12.
pub(crate) async fn run(ctx: &mut Ctx) -> Res<Vec<Row>> {
    let sizes: &[u64] = if ctx.quick { &[1024] } else { &[1024, 4096] };
    let reps = if ctx.quick { 3 } else { 5 };
    let largest = sizes.iter().copied().max().unwrap_or(1024);
    let mut per: Vec<(u64, PerSize)> = Vec::new();
    for &mb in sizes {
        let mut ps = PerSize::default();
        let target = mb * MIB;
        for rep in 0..reps {
            // Rotate the order so no variant always runs right after another.
            let mut order = [Step::Raw, Step::Fill, Step::Huge];
            order.rotate_left(rep % 3);
            for step in order {
                match step {
                    Step::Raw => {
                        let bytes = usize::try_from(target)?;
                        let secs =
                            tokio::task::spawn_blocking(move || raw_first_touch(bytes)).await??;
                        let rate = mb as f64 / secs;
                        progress(&format!(
                            "[fill] {mb} MiB rep {}: raw first-touch {rate:.0} MiB/s",
                            rep + 1
                        ));
                        ps.raw.push(rate);
                    }
                    Step::Fill | Step::Huge => {
                        let huge = matches!(step, Step::Huge);
                        let mut req = daemon::start_request(mb, 100);
                        req.huge_pages = huge;
                        let run = fill_once(&mut ctx.d, req, target).await?;
                        progress(&format!(
                            "[fill] {mb} MiB rep {}: stressd{} {:.0} MiB/s ({:.0} ms, Status {} ms){}",
                            rep + 1,
                            if huge { " huge_pages" } else { "" },
                            run.rate(),
                            run.own_secs * 1e3,
                            run.status_ttt_ms.map_or("-".into(), |v| v.to_string()),
                            if run.reached {
                                ""
                            } else {
                                " [target not reached]"
                            }
                        ));
                        if huge {
                            ps.huge.push(run);
                            daemon::clear(&mut ctx.d.client).await?;
                        } else {
                            ps.fill.push(run);
                            let rel = clear_and_watch(&mut ctx.d, ctx.idle_rss).await?;
                            progress(&format!(
                                "[release] {mb} MiB: Clear {:.0} ms, RSS after {:.1} MiB (idle {:.1}){}",
                                rel.clear_ms,
                                rel.rss_after as f64 / MIB as f64,
                                ctx.idle_rss as f64 / MIB as f64,
                                rel.within_ms.map_or(" NOT within 1 s".into(), |t| format!(
                                    ", within idle+4 MiB after {t:.0} ms"
                                ))
                            ));
                            ps.release.push(rel);
                        }
                    }
                }
            }
        }
        if mb == largest {
            ctx.build_secs = Some((
                mb,
                median(&ps.fill.iter().map(|r| r.own_secs).collect::<Vec<_>>()),
            ));
        }
        per.push((mb, ps));
    }

    let mut rows = Vec::new();
    let letters = ['a', 'b', 'c'];
    for (i, (mb, ps)) in per.iter().enumerate() {
        let raw = median(&ps.raw);
        rows.push(
            Row::new(
                &format!("1{}", letters[i]),
                format!(
                    "raw first-touch {} (mmap, 1 byte/4 KiB page; median of {})",
                    size_name(*mb),
                    ps.raw.len()
                ),
                raw,
                "MiB/s",
            )
            .samples(ps.raw.clone()),
        );
        let rates: Vec<f64> = ps.fill.iter().map(FillRun::rate).collect();
        let fill = median(&rates);
        let ttt: Vec<f64> = ps
            .fill
            .iter()
            .filter_map(|r| r.status_ttt_ms.map(|v| v as f64))
            .collect();
        let limit = 0.85 * raw;
        rows.push(
            Row::new(&format!("2{}", letters[i]), format!("fill {} to target, 100 KiB payload (median of {})", size_name(*mb), rates.len()), fill, "MiB/s")
                .bound(Bound::AtLeast { value: limit }, format!("≥ 0.85 × raw = {limit:.0} MiB/s"))
                .shown(format!(
                    "{fill:.0} MiB/s = {:.2} × raw (Status time_to_target {:.0} ms)",
                    fill / raw,
                    median(&ttt)
                ))
                .samples(rates)
                .details(json!({ "raw_mib_s": ps.raw, "runs": ps.fill.iter().map(FillRun::json).collect::<Vec<_>>() })),
        );
    }

    // Row 4: release after Clear of the largest size.
    if let Some((mb, ps)) = per.iter().find(|(mb, _)| *mb == largest) {
        let excess: Vec<f64> = ps
            .release
            .iter()
            .map(|r| (r.rss_after as f64 - ctx.idle_rss as f64) / MIB as f64)
            .collect();
        let clear_ms: Vec<f64> = ps.release.iter().map(|r| r.clear_ms).collect();
        let all_within = ps.release.iter().all(|r| r.within_ms.is_some());
        let med_excess = median(&excess);
        let details = json!({
            "idle_rss_mib": ctx.idle_rss as f64 / MIB as f64,
            "runs": ps.release.iter().map(|r| json!({
                "clear_rpc_ms": r.clear_ms,
                "server_free_ms": r.server_ms,
                "rss_after_mib": r.rss_after as f64 / MIB as f64,
                "within_idle_plus_4mib_after_ms": r.within_ms,
            })).collect::<Vec<_>>(),
        });
        rows.push(
            Row::new(
                "4a",
                format!(
                    "RSS − idle RSS within 1 s of Clear of a {} run (median of {})",
                    size_name(*mb),
                    excess.len()
                ),
                med_excess,
                "MiB",
            )
            .bound(Bound::AtMost { value: 4.0 }, "≤ 4 MiB within 1 s")
            .shown(format!(
                "{} (worst {}; {})",
                fmt_num(med_excess, "MiB"),
                fmt_num(max(&excess), "MiB"),
                if all_within {
                    "every run within 1 s"
                } else {
                    "NOT every run within 1 s"
                }
            ))
            .samples(excess)
            .details(details),
        );
        let med_clear = median(&clear_ms);
        rows.push(
            Row::new(
                "4b",
                format!(
                    "Clear RPC latency, {} tree (median of {})",
                    size_name(*mb),
                    clear_ms.len()
                ),
                med_clear,
                "ms",
            )
            .bound(Bound::AtMost { value: 500.0 }, "≤ 500 ms")
            .samples_with_max("worst", clear_ms),
        );
        let maps: Vec<f64> = ps.fill.iter().map(|r| r.maps as f64).collect();
        let med_maps = median(&maps);
        rows.push(
            Row::new(
                "9",
                format!("memory maps at {} (100 KiB payloads)", size_name(*mb)),
                med_maps,
                "maps",
            )
            .bound(Bound::Below { value: 1000.0 }, "< 1000")
            .shown(format!("{med_maps:.0} maps (idle {})", ctx.idle_maps))
            .samples(maps),
        );
    }

    // Row 12: huge pages.
    for (i, (mb, ps)) in per.iter().enumerate() {
        let fill = median(&ps.fill.iter().map(FillRun::rate).collect::<Vec<_>>());
        let huge_rates: Vec<f64> = ps.huge.iter().map(FillRun::rate).collect();
        let huge = median(&huge_rates);
        let hp = median(
            &ps.huge
                .iter()
                .map(|r| r.huge_page_bytes as f64 / MIB as f64)
                .collect::<Vec<_>>(),
        );
        let ratio = huge / fill;
        rows.push(
            Row::new(
                &format!("12{}", letters[i]),
                format!(
                    "fill {} huge_pages=true ÷ false (median of {} each)",
                    size_name(*mb),
                    huge_rates.len()
                ),
                ratio,
                "×",
            )
            .shown(format!(
                "{ratio:.2}× ({huge:.0} vs {fill:.0} MiB/s); Status.huge_page_bytes {hp:.0} MiB"
            ))
            .samples(huge_rates)
            .details(json!({ "runs": ps.huge.iter().map(FillRun::json).collect::<Vec<_>>() })),
        );
    }
    Ok(rows)
}
