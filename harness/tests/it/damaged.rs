//! A damaged run folder (a file missing, cut in half, or garbage) given to the commands that
//! read one (`reconcile`, `report`, `compare`; `merge` in the shards' test): never a panic;
//! an error (exit 2) that names the damaged file, or a result when the command does not need
//! that file. Each file is first missing, cut in half and garbage in turn; then cut anywhere
//! with a few bytes overwritten, at random (24 cases; `FUZZ_CASES=N` runs more).

use crate::support::{exclusive, profile, run, HARNESS, LENIENT_SLO};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::path::Path;
use std::process::Command;

/// The files a run folder holds that the commands read.
pub const FILES: [&str; 12] = [
    "summary.json",
    "books.json.zst",
    "convergence.json.zst",
    "external-entries.jsonl.zst",
    "ledger-entries.jsonl.zst",
    "sagas.jsonl.zst",
    "resolutions.jsonl.zst",
    "resolutions.json",
    "samples.json",
    "reconciliation.json",
    "history.jsonl.zst",
    "latency.hlog",
];

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A copy of `good` in `folder` with `file` damaged: removed (`None`) or given `content`.
pub fn damaged_copy(good: &Path, folder: &Path, file: &str, content: &Option<Vec<u8>>) {
    copy_dir(good, folder);
    match content {
        None => std::fs::remove_file(folder.join(file)).expect("remove"),
        Some(bytes) => std::fs::write(folder.join(file), bytes).expect("damage"),
    }
}

/// The damages done to each file: missing, cut in half, garbage.
pub fn damages(good: &Path, file: &str) -> [(&'static str, Option<Vec<u8>>); 3] {
    let text = std::fs::read(good.join(file)).expect("the file");
    [
        ("missing", None),
        ("cut", Some(text[..text.len() / 2].to_vec())),
        ("garbage", Some(b"\x00\xff{not this\n".to_vec())),
    ]
}

/// Runs the harness with `args` on a folder whose `file` is damaged: never a panic; exit 0
/// or 1 (the command did not need the file), or exit 2 naming the file (or saying nothing,
/// when `silent_ok`). Returns whether it refused naming the file.
pub fn judge(args: &[String], file: &str, damage: &str, silent_ok: bool) -> bool {
    let output = Command::new(HARNESS)
        .args(args)
        .output()
        .expect("run harness");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let what = format!("{} with {file} {damage}", args[0]);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    match output.status.code() {
        Some(2) => {
            let named = stderr.contains(file);
            assert!(
                named || (silent_ok && stderr.is_empty()),
                "{what}: {stderr}"
            );
            named
        }
        Some(0 | 1) => false,
        other => panic!("{what}: exit {other:?}: {stderr}"),
    }
}

#[test]
fn a_damaged_run_folder_is_refused_naming_the_file_never_with_a_panic() {
    // Only the run needs the machine to itself; the commands on its folder share it.
    let original = {
        let _serial = exclusive();
        run(&profile("damaged", 400, 1, 3, LENIENT_SLO), &[])
    };
    assert_eq!(original.code(), Some(0), "{}", original.printed());
    let good = original.out();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut refused = 0;
    for file in FILES {
        for (damage, content) in damages(&good, file) {
            let folder = dir.path().join(format!("{file}-{damage}"));
            damaged_copy(&good, &folder, file, &content);
            for args in [
                vec!["reconcile".to_owned(), folder.display().to_string()],
                vec!["report".to_owned(), folder.display().to_string()],
                vec![
                    "compare".to_owned(),
                    good.display().to_string(),
                    folder.display().to_string(),
                ],
            ] {
                // compare says it cannot tell (exit 2) without naming a file when the runs'
                // figures cannot judge; otherwise the file is named.
                let silent_ok = args[0] == "compare";
                refused += usize::from(judge(&args, file, damage, silent_ok));
            }
        }
    }
    assert!(refused > 20, "only {refused} refusals named their file");

    // Then damage at random: a file cut anywhere and a few of its bytes overwritten.
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24);
    let mut runner = TestRunner::new(Config {
        cases,
        source_file: Some(file!()),
        ..Config::default()
    });
    let made = std::cell::Cell::new(0u32);
    let damage = (
        any::<prop::sample::Index>(),
        0.0f64..=1.0,
        proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..8),
    );
    let outcome = runner.run(&damage, |(which, keep, flips)| {
        let file = *which.get(&FILES);
        let mut bytes = std::fs::read(good.join(file)).expect("the file");
        bytes.truncate((bytes.len() as f64 * keep) as usize);
        for (at, byte) in &flips {
            if !bytes.is_empty() {
                let i = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
                bytes[i] = *byte;
            }
        }
        made.set(made.get() + 1);
        let folder = dir.path().join(format!("random-{}", made.get()));
        damaged_copy(&good, &folder, file, &Some(bytes));
        let folder = folder.display().to_string();
        judge(
            &["reconcile".to_owned(), folder.clone()],
            file,
            "damaged",
            false,
        );
        let compare = [
            "compare".to_owned(),
            good.display().to_string(),
            folder.clone(),
        ];
        judge(&compare, file, "damaged", true);
        std::fs::remove_dir_all(&folder).expect("remove the copy");
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
