//! Study files: the shipped studies parse; every kind of bad file gives one line naming the
//! file, the line and the key; random mutations of valid files never make the loader panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use scenarios::study::{self, parse_override};
use serde_json::Value;

fn studies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("studies")
}

fn shipped() -> Vec<(PathBuf, String)> {
    let mut v: Vec<(PathBuf, String)> = std::fs::read_dir(studies_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn shipped_studies_parse_and_are_named_after_their_files() {
    let all = shipped();
    let names: Vec<String> =
        all.iter().map(|(p, _)| p.file_stem().unwrap().to_str().unwrap().to_string()).collect();
    for want in ["caching-vs-reuse", "tid-pressure", "invalidation-rate", "iommu"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    for (path, _) in &all {
        let s = study::load_file(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(path.file_stem().unwrap().to_str().unwrap(), s.name);
        assert!(!s.plots.is_empty() && !s.axes.is_empty(), "{}", s.name);
        // Every point expands to a valid configuration.
        let points = study::sweep::points(&s, &[], None).unwrap();
        let n: usize = s.axes.iter().map(|a| a.values.len()).product();
        assert_eq!(points.len(), n);
    }
}

#[test]
fn the_format_example_parses_with_its_values() {
    let s = study::parse_str(
        r#"name = "ex"
seed = 7
[base]
device.data_mode = "header-only"
workload.message_size = "256KiB"
[base.host]
iommu = "lazy"
[[axis]]
param = "workload.message_size"
range = { from = 4096, to = 65536, factor = 4 }
[[axis]]
param = "workload.reuse"
range = { from = 0.0, to = 1.0, step = 0.25 }
[[axis]]
param = "policy"
values = ["nocache", "v2023"]
[[plot]]
name = "bw"
x = "workload.reuse"
y = "bandwidth_gbps"
series = "policy"
filter = { "workload.message_size" = 4096 }
"#,
        "ex.toml",
    )
    .unwrap();
    assert_eq!(s.seed, 7);
    assert_eq!(s.axes[0].values, vec![Value::from(4096), Value::from(16384), Value::from(65536)]);
    assert_eq!(s.axes[1].values.len(), 5);
    assert_eq!(s.axes[1].values[4], Value::from(1.0));
    let base: Vec<&str> = s.base.iter().map(|(p, _)| p.as_str()).collect();
    assert!(base.contains(&"host.iommu") && base.contains(&"device.data_mode"), "{base:?}");
    let pts = study::sweep::points(&s, &[], None).unwrap();
    assert_eq!(pts.len(), 30);
    let p = &pts[29];
    assert_eq!(p.config.node.policy, driver::Policy::V2023);
    assert_eq!(p.config.workload.message_size.bytes(), 65536);
    assert_eq!(p.config.node.host.iommu, scenarios::world::host_costs::IommuMode::Lazy);
    assert_eq!(p.config.seed, 7);
    assert_eq!(p.file_stem(), "p029-workload.message_size-65536-workload.reuse-1.0-policy-v2023");
    // --set overrides the base; a swept parameter cannot be overridden; --seed replaces.
    let set = [parse_override("host.iommu=strict").unwrap()];
    let pts = study::sweep::points(&s, &set, Some(3)).unwrap();
    assert_eq!(pts[0].config.node.host.iommu, scenarios::world::host_costs::IommuMode::Strict);
    assert_eq!(pts[0].config.seed, 3);
    let e = study::sweep::points(&s, &[parse_override("policy=seed").unwrap()], None).unwrap_err();
    assert!(e.contains("sweeps this parameter"), "{e}");
    let e = study::sweep::points(&s, &[parse_override("host.nope=1").unwrap()], None).unwrap_err();
    assert!(e.starts_with("--set host.nope: unknown parameter"), "{e}");
}

#[test]
fn overrides_parse_toml_values() {
    assert_eq!(parse_override("a.b=3").unwrap(), ("a.b".into(), Value::from(3)));
    assert_eq!(parse_override("a=0.5").unwrap().1, Value::from(0.5));
    assert_eq!(parse_override("a=\"x y\"").unwrap().1, Value::from("x y"));
    assert_eq!(parse_override("a=strict").unwrap().1, Value::from("strict"));
    assert_eq!(parse_override("a=true").unwrap().1, Value::from(true));
    assert!(parse_override("novalue").is_err());
    assert!(parse_override("=3").is_err());
}

/// `(file text, expected line, expected key, substring of the message)`.
const BAD: &[(&str, usize, &str, &str)] = &[
    ("name = \"x\"\nseeed = 3\n", 2, "seeed", "unknown key `seeed` in the top-level table"),
    ("name = \"X Y\"\n", 1, "name", "not a valid name"),
    ("seed = 1\n", 1, "name", "missing key `name`"),
    ("name = \"x\"\nseed = -1\n", 2, "seed", "expected a non-negative integer"),
    ("name = \"x\"\n[base]\nhost.iommu = \"strictt\"\n", 3, "base.host.iommu", "unknown value `strictt`"),
    ("name = \"x\"\n[base]\nhots.iommu = \"strict\"\n", 3, "base.hots.iommu", "unknown parameter `hots.iommu`"),
    ("name = \"x\"\n[base]\nworkload.messages = 0\n", 3, "base.workload.messages", "0 is out of range 1..=100000"),
    ("name = \"x\"\n[base]\nworkload.reuse = \"lots\"\n", 3, "base.workload.reuse", "invalid type"),
    ("name = \"x\"\n[base]\nhost = 3\n", 3, "base.host", "is a table"),
    ("name = \"x\"\n\n[[axis]]\nparam = \"host.iommuu\"\nvalues = [\"off\"]\n", 4, "axis[0].param", "unknown parameter `host.iommuu`"),
    ("name = \"x\"\n[[axis]]\nparam = \"workload.reuse\"\nvalues = [0.5,\n  2.0]\n", 5, "axis[0].values[1]", "2 is out of range 0..=1"),
    ("name = \"x\"\n[[axis]]\nparam = \"workload.message_size\"\nvalues = [\"64KB\"]\n", 4, "axis[0].values[0]", "unknown unit \"KB\""),
    ("name = \"x\"\n[[axis]]\nparam = \"policy\"\nvalues = []\n", 4, "axis[0].values", "0 values"),
    ("name = \"x\"\n[[axis]]\nparam = \"policy\"\n", 2, "axis[0]", "exactly one of `values` and `range`"),
    ("name = \"x\"\n[[axis]]\nparam = \"policy\"\nvalues = [\"seed\"]\nrange = { from = 1, to = 2, step = 1 }\n", 2, "axis[0]", "exactly one of"),
    ("name = \"x\"\n[[axis]]\nparam = \"workload.messages\"\nrange = { from = 1, to = 8, factor = 1 }\n", 4, "axis[0].range.factor", "greater than 1"),
    ("name = \"x\"\n[[axis]]\nparam = \"workload.messages\"\nrange = { from = 8, to = 1, step = 1 }\n", 4, "axis[0].range", "gives no value"),
    ("name = \"x\"\n[[axis]]\nparam = \"workload.messages\"\nrange = { from = 1, to = 8, step = 1, foo = 2 }\n", 4, "axis[0].range.foo", "unknown key `foo`"),
    ("name = \"x\"\n[[axis]]\nparam = \"policy\"\nvalues = [\"seed\"]\n[[axis]]\nparam = \"policy\"\nvalues = [\"v2023\"]\n", 6, "axis[1].param", "swept twice"),
    ("name = \"x\"\n[[axis]]\nparam = \"workload.messages\"\nrange = { from = 1, to = 100000, step = 1 }\n", 4, "axis[0].range", "values (expected 1..=1000)"),
    ("name = \"x\"\n[[axis]]\nparam = \"workload.reuse\"\nvalues = [0.5, 1.0]\n[[axis]]\nparam = \"policy\"\nvalues = [\"seed\", \"v2023\"]\n[[plot]]\nname = \"p\"\nx = \"workload.reuse\"\ny = \"bandwidth_gbps\"\n", 8, "plot[0]", "`policy` neither `x` nor `series`"),
    ("name = \"x\"\n[[axis]]\nparam = \"workload.reuse\"\nvalues = [0.5]\n[[plot]]\nname = \"p\"\nx = \"workload.reuse\"\ny = \"bandwith\"\n", 8, "plot[0].y", "unknown metric `bandwith`"),
    ("name = \"x\"\n[[plot]]\nname = \"p\"\nx = \"workload.reuse\"\ny = \"bandwidth_gbps\"\n", 4, "plot[0].x", "neither a swept parameter nor a metric"),
    ("name = \"x\"\n[[axis]]\nparam = \"policy\"\nvalues = [\"seed\"]\n[[plot]]\nname = \"p\"\nx = \"hit_rate\"\ny = \"bandwidth_gbps\"\nseries = \"host.iommu\"\n", 9, "plot[0].series", "not a swept parameter"),
    ("name = \"x\"\n[[axis]]\nparam = \"policy\"\nvalues = [\"seed\"]\n[[plot]]\nname = \"p\"\nx = \"policy\"\ny = \"bandwidth_gbps\"\nfilter = { policy = \"seed\" }\n", 9, "plot[0].filter.policy", "cannot filter"),
    ("name = \"x\"\n[[axis]]\nparam = \"policy\"\nvalues = [\"seed\"]\n[[axis]]\nparam = \"workload.reuse\"\nvalues = [0.5]\n[[plot]]\nname = \"p\"\nx = \"policy\"\ny = \"bandwidth_gbps\"\nfilter = { \"workload.reuse\" = 0.25 }\n", 12, "plot[0].filter.workload.reuse", "never 0.25"),
    ("name = \"x\"\n[[plot]]\nname = \"P Q\"\nx = \"hit_rate\"\ny = \"bandwidth_gbps\"\n", 3, "plot[0].name", "not a valid name"),
    ("name = \"x\"\n[[plot]]\nname = \"p\"\nx = \"hit_rate\"\ny = \"bandwidth_gbps\"\ncolour = 1\n", 6, "plot[0].colour", "unknown key `colour` in [plot[0]]"),
    ("name = \"x\"\n[[plot]]\nname = \"p\"\nx = \"hit_rate\"\n", 2, "plot[0].y", "missing key `y`"),
    ("name = \"x\"\n[base\n", 2, "", "TOML syntax error"),
];

#[test]
fn bad_files_give_one_line_errors_with_file_line_and_key() {
    for (text, line, key, msg) in BAD {
        let e = match study::parse_str(text, "bad.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        };
        let shown = e.to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.starts_with(&format!("bad.toml:{line}: ")), "{shown}\n(want line {line})");
        if !key.is_empty() {
            assert_eq!(e.key(), Some(*key), "{shown}");
        }
        assert!(e.message().contains(msg), "{shown}\n(want {msg:?})");
    }
}

#[test]
fn unreadable_files_are_errors_too() {
    let e = study::load_file(Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/x.toml: cannot read"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bin.toml");
    std::fs::write(&p, b"name = \"x\"\n\xff\xfe").unwrap();
    let e = study::load_file(&p).unwrap_err();
    assert!(e.to_string().contains(":2: not valid UTF-8"), "{e}");
}

const SNIPPETS: &[&str] = &[
    "name = \"x\"\n",
    "[base]\n",
    "[[axis]]\n",
    "[[plot]]\n",
    "param = \"policy\"\n",
    "values = [\"seed\", \"v2023\"]\n",
    "values = [0, 1.5, -3]\n",
    "range = { from = 1, to = 9, factor = 2 }\n",
    "range = { from = 0.0, to = 1.0, step = 0.0 }\n",
    "x = \"policy\"\n",
    "y = \"bandwidth_gbps\"\n",
    "series = \"workload.reuse\"\n",
    "filter = { policy = 1 }\n",
    "workload.message_size = \"1GiB\"\n",
    "host.iommu = 3\n",
    "seed = 18446744073709551615\n",
    "= \n",
    "[",
    "]",
    "\"",
    "{",
    "}",
    ",",
    "param = \"\"\n",
    "param = \"a..b\"\n",
    "param = \"workload\"\n",
    "device.rcv_array_cnt = 7\n",
    "values = [1979-05-27]\n",
    "x_log = \"yes\"\n",
    "name = \"p\"\n",
    "seed = 1e400\n",
];

fn check_any(text: &str) {
    match study::parse_str(text, "f.toml") {
        Ok(s) => {
            // Whatever parses expands into valid points (or a one-line error).
            if let Err(e) = study::sweep::points(&s, &[], None) {
                assert!(!e.contains('\n'), "{e}");
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(!shown.contains('\n'), "{shown}");
            assert!(shown.starts_with("f.toml"), "{shown}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_toml_ish_text_never_panics(parts in proptest::collection::vec(0..SNIPPETS.len(), 0..40)) {
        let text: String = parts.iter().map(|&i| SNIPPETS[i]).collect();
        check_any(&text);
    }

    #[test]
    fn mutated_shipped_studies_never_panic(
        file in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), 0u8..4, 0..SNIPPETS.len(), any::<char>()),
            1..6,
        ),
    ) {
        let texts: Vec<String> = shipped().into_iter().map(|(_, t)| t).collect();
        let mut text: Vec<char> = file.get(&texts).chars().collect();
        for (at, op, snippet, c) in edits {
            let i = at.index(text.len() + 1);
            match op {
                0 => { if i < text.len() { text.remove(i); } }
                1 => text.insert(i, c),
                2 => { for (k, s) in SNIPPETS[snippet].chars().enumerate() { text.insert(i + k, s); } }
                _ => { if i < text.len() { text[i] = c; } }
            }
        }
        check_any(&text.into_iter().collect::<String>());
    }
}
