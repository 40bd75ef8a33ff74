//! Scenario files: the library parses, defaults apply, every kind of bad file gives the exact
//! one-line error (file, line, key), and no input makes the loader panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use scenarios::harness::scenario::{
    self, ByteSize, Contiguity, Corruption, Count, ErrorKind, FaultKind, FaultPoint, Memlock,
    Policy, Reuse, Scenario, MIB,
};

fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("library")
}

/// A valid file: the header (top level + `[memory]` + `[workload]` keys) and one message.
const VALID: &str = r#"name = "t"
seed = 3

[memory]
memlock = "64MiB"

[workload]
buffers = 2
buffer_size = "1MiB"

[[workload.messages]]
size = "64KiB"
count = 4

[[fault]]
kind = "munmap"
at = "after-packets"
message = 2
packets = 1
buffer = 1

[expect]
v2023 = { tid_errors = "some", violations = 0 }
"#;

#[test]
fn every_library_file_parses() {
    let all = scenario::load_dir(&library()).unwrap();
    assert!(all.len() >= 6, "{} scenarios", all.len());
    let mut kinds = Vec::new();
    for (path, s) in &all {
        // Library convention: the file is named after the scenario.
        assert_eq!(path.file_stem().unwrap().to_str().unwrap(), s.name, "{}", path.display());
        assert_eq!(scenario::load_file(path).unwrap(), *s);
        kinds.extend(s.faults.iter().map(|f| f.kind));
    }
    for kind in [
        FaultKind::Munmap,
        FaultKind::Madvise,
        FaultKind::DropPacket,
        FaultKind::CorruptKdeth,
        FaultKind::MemlockExhaust,
    ] {
        assert!(kinds.contains(&kind), "no library scenario injects {kind}");
    }
    assert!(all.iter().any(|(_, s)| s.workload.realloc_every > 0));
    // Sorted by file name, deterministic.
    let names: Vec<_> = all.iter().map(|(p, _)| p.clone()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn the_module_doc_example_parses() {
    let doc = include_str!("../src/harness/scenario/mod.rs");
    let after = doc.split("//! # Example").nth(1).unwrap();
    let block = after.split("//! ```toml\n").nth(1).unwrap().split("//! ```\n").next().unwrap();
    let text: String = block
        .lines()
        .map(|l| l.strip_prefix("//!").unwrap().trim_start_matches(' '))
        .fold(String::new(), |mut acc, l| {
            acc.push_str(l);
            acc.push('\n');
            acc
        });
    let s = scenario::parse_str(&text, "doc.toml").unwrap();
    assert_eq!(s.name, "reuse-stale-cache");
    assert_eq!(s.faults[0].at, FaultPoint::AfterPackets);
}

#[test]
fn a_valid_file_gives_the_typed_scenario() {
    let s = scenario::parse_str(VALID, "t.toml").unwrap();
    assert_eq!(s.seed, 3);
    assert_eq!(s.policies, Policy::ALL.to_vec());
    assert_eq!(s.memory.memlock, Memlock::Limit(ByteSize(64 * MIB)));
    assert_eq!(s.memory.memlock.bytes(), Some(64 * MIB));
    assert_eq!(s.workload.in_flight(), 2);
    assert_eq!(s.workload.total_messages(), 4);
    assert_eq!(s.workload.message_sizes().count(), 4);
    let f = s.faults[0];
    assert_eq!(
        (f.kind, f.at, f.message, f.packets, f.buffer),
        (FaultKind::Munmap, FaultPoint::AfterPackets, 2, Some(1), Some(1))
    );
    assert_eq!(f.count(), 0);
    let e = s.expect.get(Policy::V2023).unwrap();
    assert_eq!(
        (e.tid_errors, e.violations, e.failed_messages),
        (Some(Count::AtLeastOne), Some(Count::Exactly(0)), None)
    );
    assert!(s.expect.get(Policy::Seed).is_none());
    assert!(
        Count::AtLeastOne.matches(3) && !Count::Zero.matches(1) && Count::Exactly(2).matches(2)
    );
}

#[test]
fn defaults_apply() {
    let s = scenario::parse_str("name = \"d\"\n[[workload.messages]]\nsize = 4096\n", "d.toml")
        .unwrap();
    assert_eq!(s.description, "");
    assert_eq!(s.seed, 1);
    assert_eq!(s.policies, Policy::ALL.to_vec());
    assert_eq!(
        (s.memory.mem_mib, s.memory.memlock, s.memory.cache_size_mb, s.memory.contiguity),
        (512, Memlock::Unlimited, 256, Contiguity::Random)
    );
    let w = &s.workload;
    assert_eq!(
        (w.buffers, w.buffer_size, w.in_flight(), w.reuse),
        (1, ByteSize(MIB), 1, Reuse::RoundRobin)
    );
    assert_eq!((w.window, w.rndv_threshold), (ByteSize(128 << 10), ByteSize(64000)));
    assert_eq!((w.realloc_every, w.subcontexts, w.messages[0].count), (0, 1, 1));
    assert_eq!(w.rndv_config(), driver::user::RndvConfig::default());
    assert!(s.faults.is_empty());
    assert_eq!(s.expect, scenario::Expect::default());
    assert_eq!(s.memory.contiguity.to_mmu(9), mmu::Contiguity::Random { seed: 9 });
}

#[test]
fn every_fault_kind_point_and_corruption_parses() {
    for kind in FaultKind::ALL {
        for &at in kind.points() {
            let mut text = format!(
                "name = \"f\"\n[workload]\nbuffers = 2\n[[workload.messages]]\nsize = 4096\n\
                 count = 3\n[[fault]]\nkind = \"{kind}\"\nat = \"{at}\"\nmessage = 1\n"
            );
            if at == FaultPoint::AfterPackets {
                text.push_str("packets = 0\n");
            }
            if kind.is_memory() {
                text.push_str("buffer = 1\n");
            }
            if kind == FaultKind::CorruptKdeth {
                text.push_str("corrupt = \"tidctrl-3\"\n");
            }
            if kind.is_packet() {
                text.push_str("count = 2\n");
            }
            let s = scenario::parse_str(&text, "f.toml").unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((s.faults[0].kind, s.faults[0].at), (kind, at));
            assert_eq!(s.faults[0].count(), if kind.is_packet() { 2 } else { 0 });
        }
    }
    for (name, c) in [
        ("bad-tid", Corruption::BadTid),
        ("tidctrl-0", Corruption::TidCtrl0),
        ("tidctrl-3", Corruption::TidCtrl3),
        ("offset-past-end", Corruption::OffsetPastEnd),
    ] {
        let text = format!(
            "name = \"c\"\n[[workload.messages]]\nsize = 4096\n[[fault]]\nkind = \
             \"corrupt-kdeth\"\nat = \"before-first-packet\"\nmessage = 0\ncorrupt = \"{name}\"\n"
        );
        assert_eq!(scenario::parse_str(&text, "c.toml").unwrap().faults[0].corrupt, Some(c));
    }
}

#[test]
fn scenarios_round_trip_through_toml() {
    for (path, s) in scenario::load_dir(&library()).unwrap() {
        let text = toml::to_string(&s).unwrap();
        let again = scenario::parse_str(&text, "again.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, s, "{}", path.display());
    }
}

/// Bad files: the text (after `name = "x"` on line 1 where `with_name`) and the exact error.
#[test]
fn bad_files_give_one_exact_line() {
    let w = "[workload]\nbuffers = 2\n[[workload.messages]]\nsize = \"64KiB\"\ncount = 4\n"; // lines 2–6
    let cases: Vec<(String, &str)> = vec![
        // Unknown keys, at every level.
        (
            "name = \"x\"\nbogus = 1\n".into(),
            "x.toml:2: unknown key `bogus` in the top-level table (expected one of `name`, \
             `description`, `seed`, `policies`, `memory`, `workload`, `fault`, `expect`)",
        ),
        (
            "name = \"x\"\n[workload]\nbuffers = 2\nbufers = 3\n".into(),
            "x.toml:4: unknown key `bufers` in [workload] (expected one of `buffers`, \
             `buffer_size`, `in_flight`, `window`, `rndv_threshold`, `reuse`, `realloc_every`, \
             `subcontexts`, `messages`)",
        ),
        (
            "name = \"x\"\n[memory]\nmemlok = 1\n".into(),
            "x.toml:3: unknown key `memlok` in [memory] (expected one of `mem_mib`, `memlock`, \
             `cache_size_mb`, `contiguity`)",
        ),
        (
            format!("name = \"x\"\n{w}sise = 3\n"),
            "x.toml:7: unknown key `sise` in [workload.messages[0]] (expected `size` or `count`)",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"munmap\"\nat = \"after-pin\"\nmessage = 1\nbufer = 0\n"),
            "x.toml:11: unknown key `bufer` in [fault[0]] (expected one of `kind`, `at`, \
             `message`, `packets`, `buffer`, `corrupt`, `count`)",
        ),
        (
            format!("name = \"x\"\n{w}[expect]\nv2024 = {{ violations = 0 }}\n"),
            "x.toml:8: unknown key `v2024` in [expect] (expected one of `seed`, `v2023`, `nocache`)",
        ),
        (
            format!("name = \"x\"\n{w}[expect]\nv2023 = {{ violatons = 0 }}\n"),
            "x.toml:8: unknown key `violatons` in [expect.v2023] (expected one of `violations`, \
             `tid_errors`, `failed_messages`, `dma_to_freed_pinned`, `data_mismatches`)",
        ),
        (
            "name = \"x\"\nworkload.bufers = 1\n".into(),
            "x.toml:2: unknown key `bufers` in [workload] (expected one of `buffers`, \
             `buffer_size`, `in_flight`, `window`, `rndv_threshold`, `reuse`, `realloc_every`, \
             `subcontexts`, `messages`)",
        ),
        (
            "name = \"x\"\nmemory = { mem_mib = 512, memlok = 1 }\n".into(),
            "x.toml:2: unknown key `memlok` in [memory] (expected one of `mem_mib`, `memlock`, \
             `cache_size_mb`, `contiguity`)",
        ),
        (
            "name = \"x\"\n[workload]\nmessages = [\n  { size = 1 },\n  { size = 2, cont = 1 },\n]\n"
                .into(),
            "x.toml:5: unknown key `cont` in [workload.messages[1]] (expected `size` or `count`)",
        ),
        // Missing keys.
        (
            "# no name\ndescription = \"d\"\n".into(),
            "x.toml:1: missing key `name` in the top-level table",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"munmap\"\nmessage = 1\nbuffer = 0\n"),
            "x.toml:7: missing key `at` in [fault[0]]",
        ),
        // Out-of-range values.
        ("name = \"x\"\nworkload.buffers = 0\n".into(), "x.toml:2: workload.buffers: 0 is out of range 1..=64"),
        (
            "name = \"x\"\n[memory]\nmem_mib = 128\n".into(),
            "x.toml:3: memory.mem_mib: 128 is out of range 256..=4096",
        ),
        (
            "name = \"x\"\n[memory]\ncontiguity = \"runs:1024\"\n".into(),
            "x.toml:3: memory.contiguity: runs:1024 is out of range runs:1..=runs:512",
        ),
        (
            "name = \"x\"\n[workload]\nwindow = \"8MiB\"\n".into(),
            "x.toml:3: workload.window: 8MiB is out of range 4KiB..=4MiB",
        ),
        (
            "name = \"x\"\n[workload]\nsubcontexts = 9\n".into(),
            "x.toml:3: workload.subcontexts: 9 is out of range 1..=8",
        ),
        (
            "name = \"x\"\n[[workload.messages]]\nsize = 4096\ncount = 100001\n".into(),
            "x.toml:4: workload.messages[0].count: 100001 is out of range 1..=100000",
        ),
        ("name = \"X y\"\n".into(), "x.toml:1: name: \"X y\" is not a valid name (expected [a-z0-9-]+)"),
        // Bad sizes.
        (
            "name = \"x\"\n[workload]\nbuffer_size = \"12 parsecs\"\n".into(),
            "x.toml:3: workload.buffer_size: invalid byte size \"12 parsecs\": unknown unit \
             \"parsecs\" (expected B, KiB, MiB, GiB, K, M or G)",
        ),
        (
            "name = \"x\"\n[workload]\nbuffer_size = \"3KiB\"\n".into(),
            "x.toml:3: workload.buffer_size: 3KiB is out of range 4KiB..=64MiB",
        ),
        (
            "name = \"x\"\n[workload]\nbuffer_size = \"10K\"\n[[workload.messages]]\nsize = 1\n".into(),
            "x.toml:3: workload.buffer_size: 10KiB is not a multiple of 4KiB",
        ),
        (
            "name = \"x\"\n[workload]\nbuffer_size = 4100\n[[workload.messages]]\nsize = 1\n".into(),
            "x.toml:3: workload.buffer_size: 4100B is not a multiple of 4KiB",
        ),
        (
            "name = \"x\"\n[memory]\nmemlock = \"lots\"\n".into(),
            "x.toml:3: memory.memlock: invalid memlock \"lots\": expected \"unlimited\" or a byte \
             size like \"64MiB\"",
        ),
        // Bad types and enum values.
        (
            "name = \"x\"\npolicies = [\"seed\", \"v2024\"]\n".into(),
            "x.toml:2: policies[1]: unknown value `v2024` (expected one of `seed`, `v2023`, `nocache`)",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"munmapp\"\n"),
            "x.toml:8: fault[0].kind: unknown value `munmapp` (expected one of `munmap`, `shrink`, \
             `mremap`, `madvise`, `remap-same-va`, `drop-packet`, `duplicate-packet`, \
             `reorder-packets`, `corrupt-kdeth`, `memlock-exhaust`, `rcvarray-write-lost`, \
             `interrupt-lost`)",
        ),
        (
            "name = \"x\"\n[workload]\nbuffers = \"two\"\n".into(),
            "x.toml:3: workload.buffers: invalid type: string \"two\", expected an integer in \
             0..=4294967295",
        ),
        ("name = \"x\"\nseed = -1\n".into(), "x.toml:2: seed: invalid value: integer `-1`, expected a non-negative integer"),
        (
            "name = \"x\"\nseed = 1979-05-27\n".into(),
            "x.toml:2: seed: invalid type: date-time, expected a non-negative integer",
        ),
        ("name = \"x\"\nfault = 3\n".into(), "x.toml:2: fault: invalid type: integer `3`, expected an array"),
        (
            format!("name = \"x\"\n{w}[expect]\nv2023 = {{ violations = \"many\" }}\n"),
            "x.toml:8: expect.v2023.violations: invalid count \"many\": expected \"none\", \"some\" \
             or a non-negative integer",
        ),
        // Cross-field rules.
        (
            "name = \"x\"\n[workload]\nbuffer_size = \"64KiB\"\n[[workload.messages]]\nsize = \"1MiB\"\n".into(),
            "x.toml:5: workload.messages[0].size: 1MiB is out of range 1B..=64KiB",
        ),
        (
            "name = \"x\"\n[workload]\nbuffers = 2\nin_flight = 3\n".into(),
            "x.toml:4: workload.in_flight: 3 is out of range 1..=2",
        ),
        ("name = \"x\"\n[workload]\nbuffers = 2\n".into(), "x.toml:2: workload.messages: at least one [[workload.messages]] is required"),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"munmap\"\nat = \"after-pin\"\nmessage = 1\npackets = 3\nbuffer = 0\n"),
            "x.toml:11: fault[0].packets: `packets` only applies to at = \"after-packets\", not \"after-pin\"",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"munmap\"\nat = \"after-packets\"\nmessage = 1\nbuffer = 0\n"),
            "x.toml:7: fault[0].packets: missing key `packets` (required with at = \"after-packets\")",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"madvise\"\nat = \"between-messages\"\nmessage = 1\n"),
            "x.toml:7: fault[0].buffer: missing key `buffer` (required for `madvise` faults)",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"madvise\"\nat = \"between-messages\"\nmessage = 1\nbuffer = 2\n"),
            "x.toml:11: fault[0].buffer: 2 is out of range 0..=1",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"drop-packet\"\nat = \"after-packets\"\nmessage = 1\npackets = 0\ncorrupt = \"bad-tid\"\n"),
            "x.toml:12: fault[0].corrupt: `corrupt` only applies to `corrupt-kdeth` faults, not `drop-packet`",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"corrupt-kdeth\"\nat = \"before-first-packet\"\nmessage = 0\n"),
            "x.toml:7: fault[0].corrupt: missing key `corrupt` (required for `corrupt-kdeth` faults)",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"drop-packet\"\nat = \"during-tid-free\"\nmessage = 1\n"),
            "x.toml:9: fault[0].at: `drop-packet` faults cannot be injected at `during-tid-free` \
             (expected one of before-first-packet, after-packets)",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"interrupt-lost\"\nat = \"after-pin\"\nmessage = 4\n"),
            "x.toml:10: fault[0].message: 4 is out of range 0..=3",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"interrupt-lost\"\nat = \"between-messages\"\nmessage = 0\n"),
            "x.toml:10: fault[0].message: 0 is out of range 1..=3",
        ),
        (
            format!("name = \"x\"\n{w}[[fault]]\nkind = \"munmap\"\nat = \"after-pin\"\nmessage = 0\nbuffer = 0\ncount = 2\n"),
            "x.toml:12: fault[0].count: `count` only applies to packet faults, not `munmap`",
        ),
        (
            format!("name = \"x\"\npolicies = [\"seed\"]\n{w}[expect]\nv2023 = {{ violations = 0 }}\n"),
            "x.toml:9: expect.v2023: policy `v2023` is not in `policies`",
        ),
        (
            "name = \"x\"\npolicies = [\"seed\", \"nocache\", \"seed\"]\n".into(),
            "x.toml:2: policies[2]: policy `seed` is listed twice",
        ),
        // TOML syntax errors.
        ("name = \"x\"\n[workload\n".into(), "x.toml:2: TOML syntax error: invalid table header; expected `.`, `]`"),
        ("name = \"x\"\nname = \"y\"\n".into(), "x.toml:2: TOML syntax error: duplicate key `name` in document root"),
        ("name = \"x\nseed = 1\n".into(), "x.toml:1: TOML syntax error: invalid basic string"),
    ];
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for (text, want) in &cases {
        match scenario::parse_str(text, "x.toml") {
            Ok(s) => failures.push(format!("accepted {text:?}: {s:?}")),
            Err(e) if e.to_string() != *want => {
                failures.push(format!("{text:?}\n   got: {e}\n  want: {want}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for text in [
        format!("a = {}", "[".repeat(100_000)),
        "[".repeat(100_000),
        format!("a = {}1{}", "{b = ".repeat(5000), "}".repeat(5000)),
    ] {
        let e = scenario::parse_str(&text, "deep.toml").unwrap_err();
        assert!(e.to_string().starts_with("deep.toml:1: "), "{e}");
    }
}

#[test]
fn errors_carry_kind_key_and_line() {
    let e = scenario::parse_str("name = \"x\"\n[workload]\nbufers = 1\n", "a/b.toml").unwrap_err();
    assert_eq!(
        (e.file(), e.line(), e.kind(), e.key()),
        ("a/b.toml", Some(3), ErrorKind::UnknownKey, Some("workload.bufers"))
    );
    assert_eq!(e.message(), "unknown key `bufers` in [workload] (expected one of `buffers`, `buffer_size`, `in_flight`, `window`, `rndv_threshold`, `reuse`, `realloc_every`, `subcontexts`, `messages`)");
    let e = scenario::parse_str("name = \"x\"\n[memory]\nmem_mib = 1\n", "m.toml").unwrap_err();
    assert_eq!(
        (e.kind(), e.key(), e.line()),
        (ErrorKind::Invalid, Some("memory.mem_mib"), Some(3))
    );
    let e = scenario::parse_str("name = [", "s.toml").unwrap_err();
    assert_eq!((e.kind(), e.key(), e.line()), (ErrorKind::Syntax, None, Some(1)));
}

/// A fresh empty directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("hfi-sim-scenario-files-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn load_file_and_load_dir_report_files() {
    let dir = temp_dir("dir");
    let body = "[[workload.messages]]\nsize = 4096\n";
    std::fs::write(dir.join("b.toml"), format!("name = \"b\"\n{body}")).unwrap();
    std::fs::write(dir.join("a.toml"), format!("name = \"a\"\n{body}")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a scenario").unwrap();
    let all = scenario::load_dir(&dir).unwrap();
    let names: Vec<&str> = all.iter().map(|(_, s)| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);

    std::fs::write(dir.join("c.toml"), format!("name = \"a\"\n{body}")).unwrap();
    let e = scenario::load_dir(&dir).unwrap_err();
    let c = dir.join("c.toml");
    let a = dir.join("a.toml");
    assert_eq!(e.kind(), ErrorKind::DuplicateName);
    assert_eq!(
        e.to_string(),
        format!("{}:1: name: scenario name `a` is already used by {}", c.display(), a.display())
    );

    std::fs::write(&c, b"name = \"c\"\n\xff\n").unwrap();
    let e = scenario::load_file(&c).unwrap_err();
    assert_eq!(e.to_string(), format!("{}:2: not valid UTF-8", c.display()));

    let missing = dir.join("missing.toml");
    let e = scenario::load_file(&missing).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().starts_with(&format!("{}: cannot read: ", missing.display())), "{e}");
    assert!(scenario::load_dir(&missing).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The loader's contract on any input: no panic; `Ok`, or one line starting with the file.
fn check_any(text: &str) {
    match scenario::parse_str(text, "fuzz.toml") {
        Ok(s) => assert!(s.validate().is_ok()),
        Err(e) => {
            let line = e.to_string();
            assert!(line.starts_with("fuzz.toml:"), "{line}");
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
            assert!(e.line().is_some(), "{line}");
        }
    }
}

fn library_texts() -> Vec<String> {
    let mut texts = vec![VALID.to_string()];
    for (path, _) in scenario::load_dir(&library()).unwrap() {
        texts.push(std::fs::read_to_string(path).unwrap());
    }
    texts
}

/// Snippets a mutation may insert: TOML punctuation, keys and values of the schema.
const SNIPPETS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\"",
    "'",
    "{",
    "}",
    ",",
    ".",
    "\n",
    "#",
    "\\",
    "0",
    "-1",
    "1e9",
    "99999999999999999999",
    "\"4KiB\"",
    "\"3KiB\"",
    "\"runs:0\"",
    "\"none\"",
    "true",
    "1979-05-27",
    "[fault]",
    "[[fault]]\n",
    "[[workload.messages]]\n",
    "[expect]\n",
    "kind",
    "buffers",
    "message = 9\n",
    "packets = 1\n",
    "buffer = 7\n",
    "\u{0}",
    "\u{feff}",
    "é",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_any(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_toml_ish_text_never_panics(parts in proptest::collection::vec(0..SNIPPETS.len(), 0..60)) {
        let text: String = parts.iter().map(|&i| SNIPPETS[i]).collect();
        check_any(&text);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        file in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), 0u8..4, 0..SNIPPETS.len(), any::<char>()),
            1..6,
        ),
    ) {
        let texts = library_texts();
        let mut text: Vec<char> = file.get(&texts).chars().collect();
        for (at, op, snippet, c) in edits {
            let i = at.index(text.len() + 1);
            match op {
                0 => { if i < text.len() { text.remove(i); } }
                1 => drop(text.splice(i..i, SNIPPETS[snippet].chars())),
                2 => if i < text.len() { text[i] = c; } else { text.push(c); },
                _ => text.truncate(i),
            }
        }
        check_any(&text.into_iter().collect::<String>());
    }
}

#[test]
fn parse_str_and_scenario_validate_agree() {
    let mut s: Scenario = scenario::parse_str(VALID, "t.toml").unwrap();
    assert!(s.validate().is_ok());
    s.workload.buffers = 0;
    let e = s.validate().unwrap_err();
    assert_eq!(e.to_string(), "workload.buffers: 0 is out of range 1..=64");
}
