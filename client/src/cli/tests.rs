//! Tests of the command line definitions and parsers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use clap::CommandFactory;
use clap::error::ErrorKind;
use memstress_proto::v1::{Scope, start_request::Target};

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("stressctl").chain(args.iter().copied()))
}

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

/// `--help` lists every exit code error.rs uses, each once, in order.
#[test]
fn help_documents_every_exit_code() {
    use crate::error::{
        EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_PARTIAL, EXIT_STREAM_ENDED, EXIT_UNREACHABLE,
    };
    let help = Cli::command().render_long_help().to_string();
    let listed: Vec<u8> = help
        .lines()
        .skip_while(|l| *l != "Exit codes:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(
        listed,
        [
            0,
            EXIT_FAILURE,
            EXIT_UNREACHABLE,
            EXIT_STREAM_ENDED,
            EXIT_PARTIAL,
            EXIT_INTERRUPTED
        ],
        "{help}"
    );
    for words in [
        "refused",
        "followed run failed",
        "not SERVING",
        "not reachable",
        "timed out",
        "not a gRPC server",
        "usage errors",
        "ended or broke before the run did",
        "Ctrl-C",
    ] {
        assert!(help.contains(words), "{words:?} missing from:\n{help}");
    }
    // The short help stays short.
    let short = Cli::command().render_help().to_string();
    assert!(!short.contains("Exit codes:"), "{short}");
}

#[test]
fn addr_normalisation() {
    assert_eq!(
        parse_addr("http://127.0.0.1:50051").as_deref(),
        Ok("http://127.0.0.1:50051")
    );
    assert_eq!(
        parse_addr("127.0.0.1:50051").as_deref(),
        Ok("http://127.0.0.1:50051")
    );
    assert_eq!(
        parse_addr("stressd.default.svc:9000").as_deref(),
        Ok("http://stressd.default.svc:9000")
    );
    assert_eq!(parse_addr("stressd").as_deref(), Ok("http://stressd:50051"));
    assert_eq!(parse_addr("[::1]:7000").as_deref(), Ok("http://[::1]:7000"));
    assert_eq!(parse_addr("[::1]").as_deref(), Ok("http://[::1]:50051"));
    assert_eq!(
        parse_addr(" http://localhost:1/ ").as_deref(),
        Ok("http://localhost:1")
    );
    assert!(parse_addr("").is_err());
    assert_eq!(parse_addr("https://x:1/").as_deref(), Ok("https://x:1"));
    assert!(parse_addr("ftp://x:1").is_err());
    assert!(parse_addr("http://x:1/some/path").is_err());
    assert!(parse_addr("http://").is_err());
    assert!(parse_addr("bad host:1").is_err());
}

#[test]
fn timeout_parsing() {
    assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_timeout("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_timeout("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_timeout("7"), Ok(Duration::from_secs(7)));
    assert_eq!(parse_timeout("1.5"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_timeout(" 3 s "), Ok(Duration::from_secs(3)));
    assert!(parse_timeout("0").is_err());
    assert!(parse_timeout("0ms").is_err());
    assert!(parse_timeout("").is_err());
    assert!(parse_timeout("s").is_err());
    assert!(parse_timeout("-1s").is_err());
    assert!(parse_timeout("10 days").is_err());
    assert!(parse_timeout("1.2.3s").is_err());
}

#[test]
fn global_defaults() {
    // A developer may have STRESSCTL_ADDR exported; the default only applies without it.
    let cli = parse(&["status"]).unwrap();
    if std::env::var_os("STRESSCTL_ADDR").is_none() {
        assert_eq!(cli.global.addr, vec![DEFAULT_ADDR]);
    }
    assert_eq!(cli.global.timeout, Duration::from_secs(10));
    assert_eq!(cli.global.output, OutputFormat::Text);
    assert!(matches!(cli.command, Command::Status));
}

#[test]
fn global_options_anywhere() {
    let cli = parse(&[
        "--addr",
        "10.0.0.1:7000",
        "stop",
        "--timeout",
        "500ms",
        "--output",
        "json",
    ])
    .unwrap();
    assert_eq!(cli.global.addr, vec!["http://10.0.0.1:7000"]);
    assert_eq!(cli.global.timeout, Duration::from_millis(500));
    assert_eq!(cli.global.output, OutputFormat::Json);
    assert!(matches!(cli.command, Command::Stop));
    assert!(parse(&["status", "--timeout", "soon"]).is_err());
    assert!(parse(&["status", "--output", "yaml"]).is_err());
}

#[test]
fn start_follow_parses_and_unset_optionals_stay_none() {
    let cli = parse(&[
        "start",
        "--memory-mb",
        "1024",
        "--duration",
        "120",
        "--follow",
    ])
    .unwrap();
    let Command::Start(args) = cli.command else {
        panic!("expected start");
    };
    assert_eq!(args.memory_mb, Some(1024));
    assert_eq!(args.memory_percent, None);
    assert_eq!(args.duration, Some(120));
    assert!(args.follow);
    assert_eq!(args.log_interval, None);
    assert_eq!(args.payload_kb, None);
    assert_eq!(args.ramp_mb_per_second, None);
    assert_eq!(args.search_rate, None);
    assert_eq!(args.scope, None);
    assert!(!args.keep_hot && !args.huge_pages && !args.allow_oom);

    let req = args.to_request().unwrap();
    assert_eq!(req.target, Some(Target::MemoryMb(1024)));
    assert_eq!(req.duration_seconds, Some(120));
    assert_eq!(req.log_interval_seconds, None);
    assert_eq!(req.payload_size_kb, None);
    assert_eq!(req.search_rate, None);
    assert_eq!(req.ramp_mb_per_second, 0.0);
    assert_eq!(req.scope, Scope::Unspecified as i32);
    assert!(!req.keep_hot && !req.huge_pages && !req.allow_oom);
}

#[test]
fn start_all_options() {
    let cli = parse(&[
        "start",
        "--memory-percent",
        "12.5",
        "--duration",
        "0",
        "--log-interval",
        "2",
        "--payload-kb",
        "64",
        "--ramp-mb-per-second",
        "250.5",
        "--search-rate",
        "0",
        "--keep-hot",
        "--huge-pages",
        "--scope",
        "container",
        "--allow-oom",
    ])
    .unwrap();
    let Command::Start(args) = cli.command else {
        panic!("expected start");
    };
    assert!(!args.follow);
    let req = args.to_request().unwrap();
    assert_eq!(req.target, Some(Target::MemoryPercent(12.5)));
    assert_eq!(req.duration_seconds, Some(0));
    assert_eq!(req.log_interval_seconds, Some(2));
    assert_eq!(req.payload_size_kb, Some(64));
    assert_eq!(req.ramp_mb_per_second, 250.5);
    assert_eq!(req.search_rate, Some(0));
    assert!(req.keep_hot && req.huge_pages && req.allow_oom);
    assert_eq!(req.scope, Scope::Container as i32);

    let cli = parse(&["start", "--memory-mb", "64", "--scope", "process"]).unwrap();
    let Command::Start(args) = cli.command else {
        panic!("expected start");
    };
    assert_eq!(args.to_request().unwrap().scope, Scope::Process as i32);
}

#[test]
fn start_requires_exactly_one_target() {
    let none = parse(&["start", "--duration", "10"]).unwrap_err();
    assert_eq!(none.kind(), ErrorKind::MissingRequiredArgument);
    let both = parse(&["start", "--memory-mb", "10", "--memory-percent", "5"]).unwrap_err();
    assert_eq!(both.kind(), ErrorKind::ArgumentConflict);
    assert_eq!(both.exit_code(), 2);
    assert!(parse(&["start", "--memory-mb", "-5"]).is_err());
    assert!(parse(&["start", "--memory-mb", "10", "--scope", "pod"]).is_err());
}

#[test]
fn logs_and_health_options() {
    let cli = parse(&["logs"]).unwrap();
    let Command::Logs(args) = cli.command else {
        panic!("expected logs");
    };
    assert!(!args.follow);
    assert_eq!(args.from, 0);

    let cli = parse(&["logs", "-f", "--from", "42"]).unwrap();
    let Command::Logs(args) = cli.command else {
        panic!("expected logs");
    };
    assert!(args.follow);
    assert_eq!(args.from, 42);

    let cli = parse(&["health"]).unwrap();
    let Command::Health(args) = cli.command else {
        panic!("expected health");
    };
    assert_eq!(args.services(), vec!["", "memstress.v1.StressService"]);

    let cli = parse(&["health", "--service", "a", "--service", "b"]).unwrap();
    let Command::Health(args) = cli.command else {
        panic!("expected health");
    };
    assert_eq!(args.services(), vec!["a", "b"]);
}

fn history(args: &[&str]) -> Result<HistoryArgs, clap::Error> {
    let all: Vec<&str> = std::iter::once("history")
        .chain(args.iter().copied())
        .collect();
    match parse(&all)?.command {
        Command::History(a) => Ok(a),
        other => panic!("expected history, got {other:?}"),
    }
}

#[test]
fn history_options() {
    let a = history(&[]).unwrap();
    assert_eq!(a.run_id, None);
    assert_eq!(a.want(), Want::Runs(20));
    assert_eq!(a.cursor, None);

    assert_eq!(history(&["--limit", "5"]).unwrap().want(), Want::Runs(5));
    assert_eq!(history(&["--all"]).unwrap().want(), Want::All);
    let a = history(&["--cursor", "17", "--limit", "3"]).unwrap();
    assert_eq!(a.cursor.as_deref(), Some("17"));

    let a = history(&["run-12-3fa2b1"]).unwrap();
    assert_eq!(a.run_id.as_deref(), Some("run-12-3fa2b1"));
    let cli = parse(&["history", "12", "-o", "json"]).unwrap();
    assert_eq!(cli.global.output, OutputFormat::Json);

    assert!(history(&["--limit", "0"]).is_err());
    assert!(history(&["--limit", "-1"]).is_err());
    let e = history(&["--all", "--limit", "5"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
    let e = history(&["12", "--all"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
    assert!(history(&["12", "--limit", "3"]).is_err());
    assert!(history(&["12", "--cursor", "3"]).is_err());
    assert!(history(&["12", "13"]).is_err());
}

fn start(args: &[&str]) -> Result<StartArgs, clap::Error> {
    let all: Vec<&str> = std::iter::once("start")
        .chain(args.iter().copied())
        .collect();
    match parse(&all)?.command {
        Command::Start(a) => Ok(a),
        other => panic!("expected start, got {other:?}"),
    }
}

#[test]
fn start_workload_and_profile() {
    use memstress_proto::v1::{Workload, phase};
    let a = start(&["--memory-mb", "64", "--workload", "matrix"]).unwrap();
    let req = a.to_request().unwrap();
    assert_eq!(req.workload, Workload::Matrix as i32);
    assert!(req.phases.is_empty() && req.repeat.is_none());
    assert!(start(&["--memory-mb", "64", "--workload", "heap"]).is_err());
    let unset = start(&["--memory-mb", "64"]).unwrap().to_request().unwrap();
    assert_eq!(unset.workload, Workload::Unspecified as i32);

    let a = start(&[
        "--phase",
        "50%:30",
        "--phase",
        "1024:60:200",
        "--repeat",
        "0",
    ])
    .unwrap();
    let req = a.to_request().unwrap();
    assert_eq!(req.target, None);
    assert_eq!(req.duration_seconds, None);
    assert_eq!(req.repeat, Some(0));
    assert_eq!(req.phases.len(), 2);
    assert_eq!(
        req.phases[0].target,
        Some(phase::Target::MemoryPercent(50.0))
    );
    assert_eq!(req.phases[1].target, Some(phase::Target::MemoryMb(1024)));
    assert_eq!(req.phases[1].ramp_mb_per_second, Some(200.0));

    let bad = start(&["--phase", "100:5", "--phase", "1024:x"]).unwrap();
    assert_eq!(
        bad.to_request().unwrap_err(),
        "--phase #2 '1024:x': hold 'x' is not whole seconds (allowed: 0..=86400)"
    );
    for conflict in [
        &["--phase", "100:5", "--memory-mb", "64"][..],
        &["--phase", "100:5", "--memory-percent", "5"],
        &["--phase", "100:5", "--duration", "5"],
    ] {
        let e = start(conflict).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{conflict:?}");
    }
    // --repeat only with --phase.
    assert!(start(&["--memory-mb", "64", "--repeat", "2"]).is_err());
    let help = Cli::command()
        .find_subcommand_mut("start")
        .unwrap()
        .render_long_help()
        .to_string();
    assert!(
        help.contains("--phase 50%:60 --phase 85%:120:50 --phase 40%:60 --repeat 3"),
        "{help}"
    );
}

#[test]
fn targets_refresh_and_window() {
    assert_eq!(
        parse_target("dns:///stressd:7000").as_deref(),
        Ok("dns:///stressd:7000")
    );
    assert_eq!(
        parse_target("dns:///stressd").as_deref(),
        Ok("dns:///stressd:50051")
    );
    assert_eq!(
        parse_target("dns:///a.b.svc.cluster.local:50051/").as_deref(),
        Ok("dns:///a.b.svc.cluster.local:50051")
    );
    assert!(parse_target("dns:///").is_err());
    assert!(parse_target("dns:///x:0").is_err());
    assert!(parse_target("dns:///x:http").is_err());
    assert!(
        parse_target("dns://x:1")
            .unwrap_err()
            .contains("three slashes")
    );
    assert_eq!(
        parse_target("10.0.0.1:7").as_deref(),
        Ok("http://10.0.0.1:7")
    );

    let cli = parse(&["--addr", "a:1", "--addr", "dns:///b:2", "status"]).unwrap();
    assert_eq!(cli.global.addr, vec!["http://a:1", "dns:///b:2"]);

    assert_eq!(parse_refresh("250ms"), Ok(Duration::from_millis(250)));
    assert!(
        parse_refresh("2s")
            .unwrap_err()
            .contains("allowed: 100ms..=1s")
    );
    assert!(parse_refresh("50ms").is_err());
    assert_eq!(parse_window("5m"), Ok(Duration::from_secs(300)));
    assert!(parse_window("1s").is_err());
    let cli = parse(&["top"]).unwrap();
    let Command::Top(t) = cli.command else {
        panic!("expected top")
    };
    assert_eq!(
        (t.refresh, t.window),
        (Duration::from_secs(1), Duration::from_secs(300))
    );
}
