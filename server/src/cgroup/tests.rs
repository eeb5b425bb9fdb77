use super::*;

const HOST: u64 = 16 * 1024 * 1024 * 1024;
const GI: u64 = 1 << 30;
const MI: u64 = 1 << 20;

fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/cgroup")).join(name)
}

fn probe(name: &str, env: Option<u64>) -> CgroupProbe {
    let root = fixture(name);
    assert!(
        root.join("proc/self/cgroup").is_file(),
        "missing fixture {name}"
    );
    CgroupProbe::discover(&root, env)
}

/// Writes `files` (relative path, content) under a fresh temp root.
fn temp_root(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, content) in files {
        let p = dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

const V2_MOUNT: &str =
    "30 25 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n";
const V1_MEM_MOUNT: &str =
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";

fn assert_fast_paths_match(p: &CgroupProbe, m: &ContainerMemory) {
    assert_eq!(p.working_set_bytes(), m.working_set_bytes);
    assert_eq!(p.oom_kills(), m.oom_kills);
    assert_eq!(p.version(), m.version);
}

// ---- checked-in fixture trees ----

#[test]
fn v2_kubernetes_node_view() {
    let p = probe("v2", None);
    let m = p.read();
    let dir = "/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/\
               kubepods-burstable-pod1.slice/cri-containerd-abc.scope";
    assert_eq!(m.version, Some(CgroupVersion::V2));
    assert_eq!(
        m.cgroup_path,
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope"
    );
    assert_eq!(m.limit_bytes, Some(512 * MI));
    // The pod slice has the same limit; the tie goes to the container's own file.
    assert_eq!(
        m.limit_file.as_deref(),
        Some(format!("{dir}/memory.max").as_str())
    );
    assert_eq!(m.usage_bytes, Some(209_715_200));
    assert_eq!(m.inactive_file_bytes, Some(52_428_800));
    assert_eq!(m.working_set_bytes, Some(209_715_200 - 52_428_800));
    assert_eq!(m.oom_kills, Some(2));
    assert_eq!(
        m.pressure,
        Some(Psi {
            some_avg10: 1.53,
            full_avg10: 0.92,
            some_total_us: 4_523_311,
            full_total_us: 2_310_043
        })
    );
    assert_fast_paths_match(&p, &m);
    assert_eq!(
        p.basis(HOST),
        MemoryBasis {
            limit_bytes: 512 * MI,
            source: BasisSource::CgroupV2,
            detail: format!("{dir}/memory.max"),
        }
    );
    // A readable cgroup limit beats the env var.
    assert_eq!(
        probe("v2", Some(GI)).basis(HOST).source,
        BasisSource::CgroupV2
    );
}

#[test]
fn v2_inside_cgroup_namespace_uses_mount_point() {
    let p = probe("v2-ns", Some(GI));
    let m = p.read();
    assert_eq!(m.version, Some(CgroupVersion::V2));
    assert_eq!(m.cgroup_path, "/");
    assert_eq!(m.limit_bytes, Some(256 * MI));
    assert_eq!(m.limit_file.as_deref(), Some("/sys/fs/cgroup/memory.max"));
    assert_eq!(m.usage_bytes, Some(104_857_600));
    assert_eq!(m.working_set_bytes, Some(104_857_600 - 16_777_216));
    assert_eq!(m.oom_kills, Some(0));
    assert_eq!(
        m.pressure,
        Some(Psi {
            some_avg10: 0.0,
            full_avg10: 0.0,
            some_total_us: 0,
            full_total_us: 0
        })
    );
    assert_fast_paths_match(&p, &m);
    let b = p.basis(HOST);
    assert_eq!((b.limit_bytes, b.source), (256 * MI, BasisSource::CgroupV2));
    assert_eq!(b.detail, "/sys/fs/cgroup/memory.max");
}

#[test]
fn v2_ancestor_limit_counts() {
    let p = probe("v2-ancestor", None);
    let m = p.read();
    let pod =
        "/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2.slice";
    assert_eq!(m.limit_bytes, Some(GI));
    assert_eq!(
        m.limit_file.as_deref(),
        Some(format!("{pod}/memory.max").as_str())
    );
    assert_eq!(m.working_set_bytes, Some(52_428_800 - 8_388_608));
    assert_fast_paths_match(&p, &m);
    let b = p.basis(HOST);
    assert_eq!((b.limit_bytes, b.source), (GI, BasisSource::CgroupV2));
    assert_eq!(b.detail, format!("{pod}/memory.max"));
}

#[test]
fn v1_kubernetes() {
    let p = probe("v1", None);
    let m = p.read();
    let dir = "/sys/fs/cgroup/memory/kubepods/burstable/pod1/abc";
    assert_eq!(m.version, Some(CgroupVersion::V1));
    assert_eq!(m.cgroup_path, "/kubepods/burstable/pod1/abc");
    assert_eq!(m.limit_bytes, Some(512 * MI));
    assert_eq!(
        m.limit_file.as_deref(),
        Some(format!("{dir}/memory.limit_in_bytes").as_str())
    );
    assert_eq!(m.usage_bytes, Some(314_572_800));
    assert_eq!(m.inactive_file_bytes, Some(94_371_840));
    assert_eq!(m.working_set_bytes, Some(314_572_800 - 94_371_840));
    assert_eq!(m.oom_kills, Some(3));
    assert_eq!(m.pressure, None);
    assert_fast_paths_match(&p, &m);
    assert_eq!(
        p.basis(HOST),
        MemoryBasis {
            limit_bytes: 512 * MI,
            source: BasisSource::CgroupV1,
            detail: format!("{dir}/memory.limit_in_bytes"),
        }
    );
}

#[test]
fn v1_docker_root_is_own_cgroup() {
    let p = probe("v1-docker", Some(GI));
    let m = p.read();
    assert_eq!(m.version, Some(CgroupVersion::V1));
    assert_eq!(m.cgroup_path, "/docker/abc");
    assert_eq!(m.limit_bytes, Some(256 * MI));
    assert_eq!(
        m.limit_file.as_deref(),
        Some("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    );
    assert_eq!(m.usage_bytes, Some(20_971_520));
    // inactive_file > usage (possible transiently): saturates at zero.
    assert_eq!(m.inactive_file_bytes, Some(31_457_280));
    assert_eq!(m.working_set_bytes, Some(0));
    assert_eq!(m.oom_kills, Some(0));
    assert_fast_paths_match(&p, &m);
    assert_eq!(p.basis(HOST).source, BasisSource::CgroupV1);
}

#[test]
fn hybrid_prefers_v1_memory_and_pod_level_limit() {
    let p = probe("hybrid", None);
    let m = p.read();
    assert_eq!(m.version, Some(CgroupVersion::V1));
    assert_eq!(m.cgroup_path, "/kubepods/besteffort/pod3/ghi");
    assert_eq!(m.limit_bytes, Some(768 * MI));
    assert_eq!(
        m.limit_file.as_deref(),
        Some("/sys/fs/cgroup/memory/kubepods/besteffort/pod3/memory.limit_in_bytes")
    );
    assert_eq!(m.working_set_bytes, Some(41_943_040 - 10_485_760));
    assert_eq!(m.oom_kills, Some(1));
    assert_fast_paths_match(&p, &m);
    let b = p.basis(HOST);
    assert_eq!((b.limit_bytes, b.source), (768 * MI, BasisSource::CgroupV1));
}

#[test]
fn nolimit_uses_the_explicit_limit_then_host_total() {
    for env in [None, Some(GI)] {
        let p = probe("nolimit", env);
        let m = p.read();
        assert_eq!(m.version, Some(CgroupVersion::V2));
        assert_eq!(m.limit_bytes, None);
        assert_eq!(m.limit_file, None);
        assert_eq!(m.usage_bytes, Some(73_400_320));
        // inactive_file 100 MiB > usage 70 MiB: saturates.
        assert_eq!(m.working_set_bytes, Some(0));
        let want = match env {
            None => MemoryBasis {
                limit_bytes: HOST,
                source: BasisSource::HostTotal,
                detail: "host MemTotal (no cgroup limit)".to_string(),
            },
            Some(limit_bytes) => MemoryBasis {
                limit_bytes,
                source: BasisSource::DownwardApi,
                detail: "--memory-limit / MEMORY_LIMIT_BYTES".to_string(),
            },
        };
        assert_eq!(p.basis(HOST), want);
        assert_eq!(p.read_with_basis(HOST).1, want);
    }
}

#[test]
fn unreadable_falls_back_to_env_then_host() {
    let p = probe("unreadable", Some(GI));
    let m = p.read();
    assert_eq!(p.version(), None);
    assert_eq!(
        m,
        ContainerMemory {
            cgroup_path: "/kubepods.slice/kubepods-burstable.slice/\
                          kubepods-burstable-pod1.slice/cri-containerd-abc.scope"
                .to_string(),
            ..ContainerMemory::default()
        }
    );
    assert_eq!(p.working_set_bytes(), None);
    assert_eq!(p.oom_kills(), None);
    assert_eq!(
        p.basis(HOST),
        MemoryBasis {
            limit_bytes: GI,
            source: BasisSource::DownwardApi,
            detail: "--memory-limit / MEMORY_LIMIT_BYTES".to_string(),
        }
    );
    let p = probe("unreadable", None);
    let b = p.basis(HOST);
    assert_eq!((b.limit_bytes, b.source), (HOST, BasisSource::HostTotal));
    // A zero env value is no value.
    let b = probe("unreadable", Some(0)).basis(HOST);
    assert_eq!(b.source, BasisSource::HostTotal);
}

// ---- synthetic trees for edge cases ----

#[test]
fn missing_proc_files_resolve_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = CgroupProbe::discover(dir.path(), Some(GI));
    assert_eq!(p.version(), None);
    assert_eq!(p.read(), ContainerMemory::default());
    assert_eq!(p.basis(HOST).source, BasisSource::DownwardApi);
    let p = CgroupProbe::discover(Path::new("/nonexistent/root/for/test"), None);
    assert_eq!(p.basis(HOST).source, BasisSource::HostTotal);
}

#[test]
fn v2_root_cgroup_without_memory_max_is_unlimited_not_unreadable() {
    let dir = temp_root(&[
        ("proc/self/cgroup", "0::/\n"),
        ("proc/self/mountinfo", V2_MOUNT),
        (
            "sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory pids\n",
        ),
        ("sys/fs/cgroup/memory.stat", "anon 1\ninactive_file 5\n"),
        (
            "sys/fs/cgroup/memory.pressure",
            "some avg10=0.10 avg60=0.00 avg300=0.00 total=77\n",
        ),
    ]);
    let p = CgroupProbe::discover(dir.path(), Some(GI));
    let m = p.read();
    assert_eq!(m.version, Some(CgroupVersion::V2));
    assert_eq!(m.limit_bytes, None);
    assert_eq!(m.usage_bytes, None);
    assert_eq!(m.inactive_file_bytes, Some(5));
    assert_eq!(m.working_set_bytes, None);
    // `full` line absent: full_avg10 reads as 0.
    assert_eq!(
        m.pressure,
        Some(Psi {
            some_avg10: 0.10,
            full_avg10: 0.0,
            some_total_us: 77,
            full_total_us: 0
        })
    );
    // Unlimited, so the explicit limit is the basis; without one, the host's total.
    assert_eq!(p.basis(HOST).source, BasisSource::DownwardApi);
    let p = CgroupProbe::discover(dir.path(), None);
    assert_eq!(p.basis(HOST).source, BasisSource::HostTotal);
}

#[test]
fn v2_without_memory_controller_is_unresolved() {
    let dir = temp_root(&[
        ("proc/self/cgroup", "0::/a\n"),
        ("proc/self/mountinfo", V2_MOUNT),
        ("sys/fs/cgroup/cgroup.controllers", "cpu io pids\n"),
        ("sys/fs/cgroup/a/cgroup.procs", "1\n"),
    ]);
    let p = CgroupProbe::discover(dir.path(), Some(GI));
    assert_eq!(p.version(), None);
    assert_eq!(p.read().cgroup_path, "/a");
    assert_eq!(p.basis(HOST).source, BasisSource::DownwardApi);
}

#[test]
fn v1_line_without_v1_mount_uses_v2() {
    let dir = temp_root(&[
        ("proc/self/cgroup", "4:memory:/x\n0::/y\n"),
        ("proc/self/mountinfo", V2_MOUNT),
        ("sys/fs/cgroup/y/memory.max", "1048576\n"),
        ("sys/fs/cgroup/y/memory.current", "4096\n"),
    ]);
    let p = CgroupProbe::discover(dir.path(), None);
    let m = p.read();
    assert_eq!(m.version, Some(CgroupVersion::V2));
    assert_eq!(m.cgroup_path, "/y");
    assert_eq!(m.limit_bytes, Some(1_048_576));
    assert_eq!(m.limit_file.as_deref(), Some("/sys/fs/cgroup/y/memory.max"));
}

#[test]
fn v1_mount_without_files_falls_back_to_v2() {
    let dir = temp_root(&[
        ("proc/self/cgroup", "4:memory:/x\n0::/y\n"),
        (
            "proc/self/mountinfo",
            &format!(
                "{V1_MEM_MOUNT}{}",
                V2_MOUNT.replace("/sys/fs/cgroup ", "/sys/fs/cgroup/unified ")
            ),
        ),
        ("sys/fs/cgroup/unified/y/memory.current", "4096\n"),
    ]);
    let p = CgroupProbe::discover(dir.path(), None);
    assert_eq!(p.version(), Some(CgroupVersion::V2));
    assert_eq!(p.read().usage_bytes, Some(4096));
}

#[test]
fn v1_hierarchical_limit_covers_hidden_ancestors() {
    let mi = "40 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,relatime master:15 - cgroup cgroup rw,memory\n";
    let dir = temp_root(&[
        ("proc/self/cgroup", "4:memory:/docker/abc\n"),
        ("proc/self/mountinfo", mi),
        (
            "sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        ),
        ("sys/fs/cgroup/memory/memory.usage_in_bytes", "1000\n"),
        (
            "sys/fs/cgroup/memory/memory.stat",
            "hierarchical_memory_limit 104857600\ntotal_inactive_file 200\n",
        ),
    ]);
    let p = CgroupProbe::discover(dir.path(), Some(GI));
    let m = p.read();
    assert_eq!(m.limit_bytes, Some(100 * MI));
    assert_eq!(
        m.limit_file.as_deref(),
        Some("/sys/fs/cgroup/memory/memory.stat")
    );
    assert_eq!(m.working_set_bytes, Some(800));
    let b = p.basis(HOST);
    assert_eq!((b.limit_bytes, b.source), (100 * MI, BasisSource::CgroupV1));
    assert_eq!(b.detail, "/sys/fs/cgroup/memory/memory.stat");
}

#[test]
fn escaped_mount_point_and_path_outside_mount_root() {
    // Mount point with a space (\040); mount root is a different cgroup than ours, so the
    // mount point itself is used.
    let mi = "40 31 0:32 /docker/other /sys/fs/my\\040cg rw - cgroup cgroup rw,memory\n";
    let dir = temp_root(&[
        ("proc/self/cgroup", "4:memory:/docker/abc\n"),
        ("proc/self/mountinfo", mi),
        ("sys/fs/my cg/memory.limit_in_bytes", "4096\n"),
    ]);
    let p = CgroupProbe::discover(dir.path(), None);
    let m = p.read();
    assert_eq!(m.version, Some(CgroupVersion::V1));
    assert_eq!(m.limit_bytes, Some(4096));
    assert_eq!(
        m.limit_file.as_deref(),
        Some("/sys/fs/my cg/memory.limit_in_bytes")
    );
    assert_eq!(m.usage_bytes, None);
}

#[test]
fn garbage_files_never_panic_and_read_as_none() {
    let dir = temp_root(&[
        ("proc/self/cgroup", "0::/c\n"),
        ("proc/self/mountinfo", V2_MOUNT),
        ("sys/fs/cgroup/c/memory.max", "lots\n"),
        ("sys/fs/cgroup/c/memory.current", ""),
        (
            "sys/fs/cgroup/c/memory.stat",
            "inactive_file\ninactive_file x\n",
        ),
        ("sys/fs/cgroup/c/memory.events", "oom_kill -1\n"),
        (
            "sys/fs/cgroup/c/memory.pressure",
            "some avg10=nan total=1\nfull\n",
        ),
    ]);
    let p = CgroupProbe::discover(dir.path(), Some(GI));
    let m = p.read();
    assert_eq!(m.version, Some(CgroupVersion::V2));
    assert_eq!(
        m,
        ContainerMemory {
            version: Some(CgroupVersion::V2),
            cgroup_path: "/c".to_string(),
            ..ContainerMemory::default()
        }
    );
    // A garbage limit file is "unreadable": the env fallback applies.
    assert_eq!(p.basis(HOST).source, BasisSource::DownwardApi);
}

#[test]
fn limits_are_reread_after_discovery() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("v2-ns"), dir.path());
    let p = CgroupProbe::discover(dir.path(), None);
    assert_eq!(p.basis(HOST).limit_bytes, 256 * MI);
    fs::write(dir.path().join("sys/fs/cgroup/memory.max"), "max\n").unwrap();
    assert_eq!(p.basis(HOST).source, BasisSource::HostTotal);
    fs::write(
        dir.path().join("sys/fs/cgroup/memory.events"),
        "oom_kill 9\n",
    )
    .unwrap();
    assert_eq!(p.oom_kills(), Some(9));
}

#[test]
fn real_machine_does_not_panic() {
    let p = CgroupProbe::discover(Path::new("/"), None);
    let m = p.read();
    println!(
        "real machine: version={:?} probe.version={:?}",
        m.version,
        p.version()
    );
    println!("real machine: {m:#?}");
    println!(
        "real machine basis (host_total = test constant 16 GiB): {:?}",
        p.basis(HOST)
    );
    if let (Some(ws), Some(usage)) = (m.working_set_bytes, m.usage_bytes) {
        assert!(ws <= usage);
    }
    assert_eq!(m.version, p.version());
    if m.limit_bytes.is_some() {
        assert!(m.limit_file.is_some());
    }
    let b = p.basis(HOST);
    assert!(b.limit_bytes > 0);
}

// ---- parsers ----

#[test]
fn version_labels() {
    assert_eq!(CgroupVersion::V1.as_str(), "v1");
    assert_eq!(CgroupVersion::V2.as_str(), "v2");
}

#[test]
fn parse_limit_env_accepts_bytes_and_quantities() {
    let cases: &[(&str, u64)] = &[
        ("2147483648", 2_147_483_648),
        (" 2147483648\n", 2_147_483_648),
        ("+1", 1),
        ("2Gi", 2 * GI),
        ("512Mi", 512 * MI),
        ("123Ki", 123 * 1024),
        ("1Ti", 1 << 40),
        ("1Ei", 1 << 60),
        ("1G", 1_000_000_000),
        ("1500M", 1_500_000_000),
        ("128974848", 128_974_848),
        ("129e6", 129_000_000),
        ("129E6", 129_000_000),
        ("1e+3", 1000),
        ("15e-1", 2),
        ("1k", 1000),
        ("1E", 1_000_000_000_000_000_000),
        ("0.5Gi", 512 * MI),
        ("1.5Gi", 1_610_612_736),
        (".5k", 500),
        ("1.", 1),
        ("100m", 1),
        ("1500m", 2),
        ("0001Ki", 1024),
        ("1.000000000000000000000000000000000000000000Ki", 1024),
        ("18446744073709551615", u64::MAX),
    ];
    for (input, want) in cases {
        assert_eq!(parse_limit_env(input), Some(*want), "input {input:?}");
    }
}

#[test]
fn parse_limit_env_rejects_garbage() {
    for input in [
        "",
        " ",
        "0",
        "0Gi",
        "0.0",
        "-1",
        "-2Gi",
        "abc",
        "Gi",
        "2GiB",
        "2gi",
        "2K",
        "2 Gi",
        "1e",
        "1e+",
        "1e99999",
        "1e40",
        "2Ei0",
        "1.2.3",
        ".",
        "+",
        "1_000",
        "0x10",
        "18446744073709551616",
        "16Ei",
        "1e-40",
        "0e5",
        "NaN",
        "inf",
        "１",
    ] {
        let got = parse_limit_env(input);
        // "1e-40" is a positive sub-byte value: Kubernetes rounds it up to 1.
        if input == "1e-40" {
            assert_eq!(got, Some(1));
        } else {
            assert_eq!(got, None, "input {input:?}");
        }
    }
}

#[test]
fn limit_values() {
    use LimitRead::*;
    let v1 = CgroupVersion::V1;
    let v2 = CgroupVersion::V2;
    assert_eq!(parse_limit_value("max\n", v2), Unlimited);
    assert_eq!(parse_limit_value("536870912\n", v2), Limited(536_870_912));
    assert_eq!(parse_limit_value("0", v2), Limited(0));
    assert_eq!(parse_limit_value("9223372036854771712\n", v1), Unlimited);
    assert_eq!(parse_limit_value(&(1u64 << 60).to_string(), v1), Unlimited);
    assert_eq!(
        parse_limit_value(&((1u64 << 60) - 1).to_string(), v1),
        Limited((1 << 60) - 1)
    );
    assert_eq!(parse_limit_value("-1", v1), Unlimited);
    for bad in [
        "",
        "\n",
        "max",
        "12 34",
        "-5",
        "1.5",
        "99999999999999999999999",
    ] {
        assert_eq!(parse_limit_value(bad, v1), Unreadable, "{bad:?}");
    }
    assert_eq!(parse_limit_value("-1", v2), Unreadable);
}

#[test]
fn proc_cgroup_lines() {
    let got = parse_proc_cgroup("12:pids:/a\n4:cpu,memory:/k/p:o:d\n0::/u\n");
    assert_eq!(got.v1_memory.as_deref(), Some("/k/p:o:d"));
    assert_eq!(got.v2.as_deref(), Some("/u"));
    // name=memory is not the memory controller; truncated and junk lines are skipped.
    let got = parse_proc_cgroup("1:name=memory:/n\n4:memory\n4:memory:\n0::\nxx\n\n:::\n");
    assert_eq!(got, ProcCgroup::default());
}

#[test]
fn mountinfo_lines() {
    let mi = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 master:1 - cgroup cgroup rw,memory\n\
              36 31 0:33 /a\\134b /x\\011y rw - cgroup2 none rw\n\
              37 31 0:33 / /z rw - cgroup2\n\
              38 31 0:33 / /z rw cgroup2 none rw\n\
              39 31 0:33\n";
    let got = parse_mountinfo(mi);
    assert_eq!(
        got,
        vec![
            Mount {
                root: "/".into(),
                mountpoint: "/sys/fs/cgroup/memory".into(),
                fstype: "cgroup".into(),
                superopts: "rw,memory".into(),
            },
            Mount {
                root: "/a\\b".into(),
                mountpoint: "/x\ty".into(),
                fstype: "cgroup2".into(),
                superopts: "rw".into(),
            },
        ]
    );
}

#[test]
fn octal_unescape() {
    assert_eq!(unescape_octal("/a\\040b"), "/a b");
    assert_eq!(unescape_octal("\\012\\134"), "\n\\");
    assert_eq!(unescape_octal("\\04"), "\\04");
    assert_eq!(unescape_octal("\\089"), "\\089");
    assert_eq!(unescape_octal("\\777"), "\\777");
    assert_eq!(unescape_octal("end\\"), "end\\");
    assert_eq!(unescape_octal("\\303\\251"), "é");
}

#[test]
fn relative_paths_are_component_wise() {
    assert_eq!(relative_components("/", "/a/b"), vec!["a", "b"]);
    assert_eq!(
        relative_components("/docker/abc", "/docker/abc"),
        Vec::<String>::new()
    );
    assert_eq!(
        relative_components("/docker/abc", "/docker/abc/sub"),
        vec!["sub"]
    );
    assert_eq!(
        relative_components("/docker/abc", "/docker/abcdef"),
        Vec::<String>::new()
    );
    assert_eq!(
        relative_components("/docker/abc", "/"),
        Vec::<String>::new()
    );
    assert_eq!(relative_components("/", "/../../x"), Vec::<String>::new());
    assert_eq!(relative_components("/", "//a/./b/"), vec!["a", "b"]);
}

#[test]
fn pick_mount_prefers_containing_root() {
    let m = |root: &str, mp: &str| Mount {
        root: root.into(),
        mountpoint: mp.into(),
        fstype: "cgroup2".into(),
        superopts: "rw".into(),
    };
    let mounts = [m("/other", "/first"), m("/", "/top"), m("/k/p", "/deep")];
    assert_eq!(
        pick_mount(mounts.iter(), "/k/p/c").map(|m| m.mountpoint.as_str()),
        Some("/deep")
    );
    assert_eq!(
        pick_mount(mounts.iter(), "/z").map(|m| m.mountpoint.as_str()),
        Some("/top")
    );
    assert_eq!(
        pick_mount(mounts[..1].iter(), "/z").map(|m| m.mountpoint.as_str()),
        Some("/first")
    );
    assert_eq!(pick_mount([].iter(), "/z"), None);
}

#[test]
fn psi_and_flat_keyed() {
    assert_eq!(parse_psi(""), None);
    assert_eq!(
        parse_psi("full avg10=1.00 avg60=0 avg300=0 total=5\n"),
        None
    );
    assert_eq!(parse_psi("some avg10=1.00 avg60=0.00 avg300=0.00\n"), None);
    assert_eq!(parse_psi("some avg10=-1 total=3\n"), None);
    assert_eq!(parse_psi("some avg10=inf total=3\n"), None);
    assert_eq!(
        parse_psi("some avg10=2.5 avg60=0 avg300=0 total=3\nfull avg10=x total=1\n"),
        Some(Psi {
            some_avg10: 2.5,
            full_avg10: 0.0,
            some_total_us: 3,
            full_total_us: 0
        })
    );
    assert_eq!(flat_value("a 1\nb 2\n", "b"), Some(2));
    assert_eq!(flat_value("ab 1\n", "a"), None);
    assert_eq!(flat_value("a\n", "a"), None);
    assert_eq!(flat_value("a 1.5\n", "a"), None);
    assert_eq!(flat_value("a  7 junk\n", "a"), Some(7));
    assert_eq!(working_set(Some(5), Some(9)), Some(0));
    assert_eq!(working_set(Some(5), None), None);
    assert_eq!(working_set(None, Some(1)), None);
}

/// Every prefix of every real fixture file, plus pseudo-random byte soup, through every
/// parser: nothing may panic.
#[test]
fn fuzzish_parsers_never_panic() {
    fn all_parsers(s: &str) {
        let _ = parse_proc_cgroup(s);
        for m in parse_mountinfo(s) {
            let _ = relative_components(&m.root, s);
        }
        let _ = parse_psi(s);
        let _ = flat_value(s, "inactive_file");
        let _ = parse_limit_env(s);
        let _ = unescape_octal(s);
        let _ = parse_limit_value(s, CgroupVersion::V1);
        let _ = parse_limit_value(s, CgroupVersion::V2);
        let _ = relative_components(s, "/a/b");
    }
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(fs::read_to_string(e.path()).unwrap());
            }
        }
    }
    let mut contents = Vec::new();
    walk(&fixture(""), &mut contents);
    assert!(contents.len() > 40);
    for c in &contents {
        // Every prefix of small files; a stride through big ones keeps this fast in debug.
        let step = 1 + c.len() / 400;
        for (i, _) in c.char_indices().step_by(step) {
            all_parsers(&c[..i]);
        }
    }
    let alphabet: Vec<char> = "0123456789 :/-\\.=\nmaxsomefullavg10total_KiMGe+é"
        .chars()
        .collect();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..3000 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let len = (seed >> 58) as usize;
        let s: String = (0..len)
            .map(|i| {
                let x =
                    seed.rotate_left(i as u32 * 7) ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
                alphabet[(x % alphabet.len() as u64) as usize]
            })
            .collect();
        all_parsers(&s);
    }
}

/// Property tests: every parser of an OS file takes arbitrary input without panicking,
/// and values formatted the way the kernel (or Kubernetes) writes them parse back.
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Text shaped like the files these parsers read, with the characters that matter.
    fn soup() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[0-9 :/\\\\.=\n\t,+-]{0,120}",
            "(some|full|max|avg10=|total=|memory|0::|Ki|Mi|Gi|e|E|\\\\040| |-|/|\n|[0-9]{1,25}){0,40}",
        ]
    }

    /// Kernel mountinfo escaping of space, tab, newline and backslash.
    fn escape(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                ' ' => "\\040".to_string(),
                '\t' => "\\011".to_string(),
                '\n' => "\\012".to_string(),
                '\\' => "\\134".to_string(),
                c => c.to_string(),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn parsers_never_panic(s in soup()) {
            let _ = parse_proc_cgroup(&s);
            for m in parse_mountinfo(&s) {
                let _ = relative_components(&m.root, &s);
                let _ = pick_mount(std::iter::once(&m), &s);
            }
            let _ = parse_psi(&s);
            let _ = flat_value(&s, "oom_kill");
            let _ = parse_u64(&s);
            let _ = parse_limit_env(&s);
            let _ = unescape_octal(&s);
            let _ = parse_limit_value(&s, CgroupVersion::V1);
            let _ = parse_limit_value(&s, CgroupVersion::V2);
            let _ = relative_components(&s, "/a/b");
            let _ = components(&s);
        }

        #[test]
        fn limit_env_plain_bytes_round_trip(n in 1u64..) {
            prop_assert_eq!(parse_limit_env(&n.to_string()), Some(n));
            prop_assert_eq!(parse_limit_env(&format!(" +{n} ")), Some(n));
        }

        #[test]
        fn limit_env_binary_suffixes_multiply_exactly(n in 1u64.., pick in 0usize..3) {
            let (suffix, shift) = [("Ki", 10u32), ("Mi", 20), ("Gi", 30)][pick];
            let want = (u128::from(n) << shift).try_into().ok();
            prop_assert_eq!(parse_limit_env(&format!("{n}{suffix}")), want);
            let small = n >> (shift + 1);
            if small > 0 {
                prop_assert_eq!(parse_limit_env(&format!("{small}{suffix}")), Some(small << shift));
            }
        }

        #[test]
        fn limit_env_decimal_suffixes_multiply_exactly(n in 1u64..1_000_000_000, pick in 0usize..3) {
            let (suffix, factor) = [("k", 1_000u64), ("M", 1_000_000), ("G", 1_000_000_000)][pick];
            prop_assert_eq!(parse_limit_env(&format!("{n}{suffix}")), n.checked_mul(factor));
        }

        #[test]
        fn limit_files_round_trip(n in any::<u64>()) {
            let want = if n >= UNLIMITED_THRESHOLD { LimitRead::Unlimited } else { LimitRead::Limited(n) };
            prop_assert_eq!(parse_limit_value(&format!("{n}\n"), CgroupVersion::V1), want);
            prop_assert_eq!(parse_limit_value(&format!("{n}\n"), CgroupVersion::V2), want);
            prop_assert_eq!(parse_u64(&format!("{n}\n")), Some(n));
        }

        #[test]
        fn psi_round_trips(
            some in (0u32..=10_000, any::<u64>()),
            full in proptest::option::of((0u32..=10_000, any::<u64>())),
        ) {
            let line = |kind: &str, (avg, total): (u32, u64)| {
                let a = f64::from(avg) / 100.0;
                format!("{kind} avg10={a:.2} avg60={a:.2} avg300=0.00 total={total}\n")
            };
            let mut text = line("some", some);
            if let Some(f) = full {
                text.push_str(&line("full", f));
            }
            let psi = parse_psi(&text).unwrap();
            let (fa, ft) = full.unwrap_or((0, 0));
            let close = |x: f64, hundredths: u32| (x - f64::from(hundredths) / 100.0).abs() < 1e-9;
            prop_assert!(close(psi.some_avg10, some.0), "{psi:?}");
            prop_assert!(close(psi.full_avg10, fa), "{psi:?}");
            prop_assert_eq!(psi.some_total_us, some.1);
            prop_assert_eq!(psi.full_total_us, ft);
        }

        #[test]
        fn mountinfo_with_escapes_round_trips(
            root in "(/[a-z \\t\\\\é]{0,8}){0,4}",
            mountpoint in "(/[a-z \\t\\\\é]{1,8}){1,4}",
            optional in "( shared:[0-9]{1,3}| master:[0-9]{1,3}){0,2}",
            fstype in "cgroup2?|tmpfs",
            superopts in "rw(,[a-z_]{1,8}){0,3}",
        ) {
            let root = if root.is_empty() { "/".to_string() } else { root };
            let text = format!(
                "36 25 0:31 {} {} rw,nosuid{optional} - {fstype} cgroup {superopts}\n",
                escape(&root),
                escape(&mountpoint),
            );
            let mounts = parse_mountinfo(&text);
            prop_assert_eq!(mounts, vec![Mount { root, mountpoint, fstype, superopts }]);
        }

        #[test]
        fn proc_cgroup_round_trips(v2 in "/[a-z0-9_./:-]{0,40}", v1 in "/[a-z0-9_./:-]{0,40}") {
            let text = format!("4:cpu,memory:{v1}\n0::{v2}\n");
            prop_assert_eq!(
                parse_proc_cgroup(&text),
                ProcCgroup { v1_memory: Some(v1), v2: Some(v2) }
            );
        }

        #[test]
        fn flat_keyed_round_trips(values in proptest::collection::vec(any::<u64>(), 1..12), pick in any::<prop::sample::Index>()) {
            let text: String = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("key_{i} {v}\n"))
                .collect();
            let i = pick.index(values.len());
            prop_assert_eq!(flat_value(&text, &format!("key_{i}")), Some(values[i]));
            prop_assert_eq!(flat_value(&text, "key"), None);
        }
    }
}
