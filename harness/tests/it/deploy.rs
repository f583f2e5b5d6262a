//! The Kubernetes files of a sharded run (`harness/deploy/`), checked here where no cluster
//! runs them: they parse, the profile and target file they carry are valid, the shard count
//! agrees everywhere, a pod's completion index becomes its shard, and the merge step names
//! exactly the folders the shards write.

use crate::support::HARNESS;
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy(file)).expect("read a deploy file");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("a YAML document"))
        .collect()
}

use serde::Deserialize;

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// The value after `flag` in `args`.
fn after<'a>(args: &'a [String], flag: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag}"));
    &args[at + 1]
}

fn env_of(container: &Value, name: &str) -> Value {
    container["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name}"))
        .clone()
}

#[test]
fn the_indexed_job_runs_one_shard_per_pod_and_the_merge_names_every_shards_folder() {
    let docs = documents("job.yaml");
    let config = of_kind(&docs, "ConfigMap");
    let job = of_kind(&docs, "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    let count: u64 = env_of(container, "HARNESS_SHARD_COUNT")["value"]
        .as_str()
        .expect("a count")
        .parse()
        .expect("a number");
    assert_eq!(spec["completions"].as_u64(), Some(count));
    assert_eq!(spec["parallelism"].as_u64(), Some(count));
    assert_eq!(
        env_of(container, "JOB_COMPLETION_INDEX")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );

    // The profile and the target file come from the ConfigMap, mounted where the args say.
    let args = strings(&container["args"]);
    let mount = |volume: &str| -> String {
        container["volumeMounts"]
            .as_sequence()
            .expect("mounts")
            .iter()
            .find(|m| m["name"] == volume)
            .and_then(|m| m["mountPath"].as_str())
            .expect("a mount")
            .to_owned()
    };
    let config_dir = mount("config");
    let dir = tempfile::tempdir().expect("tempdir");
    for (flag, parse) in [("--profile", "profile"), ("--target-file", "target")] {
        let path = after(&args, flag);
        let key = path
            .strip_prefix(&format!("{config_dir}/"))
            .unwrap_or_else(|| panic!("{path} is not in the ConfigMap's mount"));
        let text = config["data"][key]
            .as_str()
            .expect("the ConfigMap holds it");
        let local = dir.path().join(key);
        std::fs::write(&local, text).expect("write");
        match parse {
            "profile" => {
                harness::profile::parse(&local, text).expect("the profile is valid");
            }
            _ => {
                harness::system::target_file::parse(&local, text)
                    .expect("the target file is valid");
            }
        }
    }
    let out = after(&args, "--out");
    assert_eq!(
        out,
        format!("{}/shard-$(JOB_COMPLETION_INDEX)", mount("results"))
    );
    assert_eq!(after(&args, "--start-at"), "$(START_AT)");

    // Each pod's index is its shard: the harness, given a pod's environment (the index as
    // the annotation gives it) and its args without the target, names the shard it is.
    let profile = dir.path().join("profile.yaml");
    for index in 0..count {
        let output = Command::new(HARNESS)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("HARNESS_SHARD_COUNT", count.to_string())
            .arg("--profile")
            .arg(&profile)
            .args(["--start-at", "4102444800", "--quiet"])
            .arg("--out")
            .arg(dir.path().join(format!("shard-{index}")))
            .output()
            .expect("run the harness");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "shard {index}/{count}: the shards of a run drive one system"
            )),
            "{stderr}"
        );
    }

    // The merge step reads exactly the shards' folders, on the same volume.
    let merge_docs = documents("merge-job.yaml");
    let merge_pod = &of_kind(&merge_docs, "Job")["spec"]["template"]["spec"];
    let merge_args = strings(&merge_pod["containers"][0]["args"]);
    assert_eq!(merge_args[0], "merge");
    let folders: Vec<String> = (0..count)
        .map(|i| out.replace("$(JOB_COMPLETION_INDEX)", &i.to_string()))
        .collect();
    assert_eq!(merge_args[1..=count as usize], folders[..]);
    assert_eq!(
        after(&merge_args, "--out"),
        format!("{}/merged", mount("results"))
    );
    let claim = |pod: &Value| -> Value {
        pod["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == "results")
            .map(|v| v["persistentVolumeClaim"]["claimName"].clone())
            .expect("the results volume")
    };
    assert_eq!(claim(merge_pod), claim(pod));
}

#[test]
fn the_image_builds_the_harness_in_one_stage_and_runs_it_from_another() {
    let text = std::fs::read_to_string(deploy("Dockerfile")).expect("the Dockerfile");
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].ends_with(" AS build"), "{stages:?}");
    assert!(text.contains("RUN cargo build --release --locked --bin harness"));
    assert!(text.contains("COPY --from=build /src/target/release/harness /usr/local/bin/harness"));
    assert!(text.contains("ENTRYPOINT [\"/usr/local/bin/harness\"]"));
    // What it copies from the repository's root exists there.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            assert!(root.join(source).exists(), "{source} in {line}");
        }
    }
}
