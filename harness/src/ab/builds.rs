//! The two builds `harness ab` compares. A build is a `harness` binary: a folder holding one
//! (a `target/release`), the binary itself, or a git revision, exported with `git archive`
//! and built with cargo into `target/ab/`, one binary kept per commit so a second
//! comparison with the same revision builds nothing. The harness starts the services from
//! its own binary (`harness serve <role>`), so the services and the harness both come from
//! the build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary's name in a build folder.
const BINARY: &str = "harness";

/// Where revisions are built, under the repository's root.
const BUILD_ROOT: &str = "target/ab";

/// Names the cargo target folder revisions are built in, instead of `target/ab/cargo`.
pub const TARGET_DIR_ENV: &str = "HARNESS_AB_TARGET_DIR";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "`{given}` is neither a harness binary, a folder holding one, nor a git revision: {detail}"
    )]
    Unknown { given: String, detail: String },
    #[error("building {revision}: {detail}")]
    Build { revision: String, detail: String },
}

/// A build ready to run.
#[derive(Debug, Clone)]
pub struct Build {
    /// What the command line named.
    pub given: String,
    pub binary: PathBuf,
    /// The commit it was built from, for a revision.
    pub commit: Option<String>,
}

/// The build `given` names, built first when it is a revision.
pub fn resolve(given: &str) -> Result<Build, BuildError> {
    let path = Path::new(given);
    let binary = if path.is_dir() {
        Some(path.join(BINARY))
    } else if path.is_file() {
        Some(path.to_owned())
    } else {
        None
    };
    if let Some(binary) = binary {
        if !binary.is_file() {
            return Err(BuildError::Unknown {
                given: given.to_owned(),
                detail: format!("{} does not exist", binary.display()),
            });
        }
        return Ok(Build {
            given: given.to_owned(),
            binary,
            commit: None,
        });
    }
    let commit =
        git(&["rev-parse", "--verify", &format!("{given}^{{commit}}")]).map_err(|detail| {
            BuildError::Unknown {
                given: given.to_owned(),
                detail,
            }
        })?;
    let binary = build_revision(&commit)?;
    Ok(Build {
        given: given.to_owned(),
        binary,
        commit: Some(commit),
    })
}

/// `git args…` in the current folder: its trimmed output, or why it failed.
fn git(args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Builds `commit`'s harness in release mode, once: `target/ab/<commit>/harness`.
fn build_revision(commit: &str) -> Result<PathBuf, BuildError> {
    let failed = |detail: String| BuildError::Build {
        revision: commit.to_owned(),
        detail,
    };
    let root = PathBuf::from(git(&["rev-parse", "--show-toplevel"]).map_err(failed)?);
    let build_root = root.join(BUILD_ROOT);
    let kept = build_root.join(commit).join(BINARY);
    if kept.is_file() {
        return Ok(kept);
    }
    let source = build_root.join(format!("src-{commit}"));
    let _ = std::fs::remove_dir_all(&source);
    std::fs::create_dir_all(&source).map_err(|e| failed(e.to_string()))?;
    // `git archive | tar -x`: the commit's tree alone, without touching the work tree.
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"git archive --format=tar "$1" | tar -x -C "$2""#)
        .arg("sh")
        .arg(commit)
        .arg(&source)
        .status()
        .map_err(|e| failed(format!("cannot run git archive: {e}")))?;
    if !status.success() {
        return Err(failed(format!("git archive {commit} failed")));
    }
    eprintln!("harness ab: building {commit} (cargo build --release --bin harness)");
    // One target folder for every revision, so the dependencies are built once; or the one
    // HARNESS_AB_TARGET_DIR names (a CI's own, its dependencies built already).
    let target = std::env::var_os(TARGET_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| build_root.join("cargo"));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--locked", "--bin", BINARY])
        .arg("--manifest-path")
        .arg(source.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .map_err(|e| failed(format!("cannot run cargo: {e}")))?;
    if !status.success() {
        return Err(failed("cargo build failed".into()));
    }
    std::fs::create_dir_all(build_root.join(commit)).map_err(|e| failed(e.to_string()))?;
    std::fs::copy(target.join("release").join(BINARY), &kept).map_err(|e| failed(e.to_string()))?;
    let _ = std::fs::remove_dir_all(&source);
    Ok(kept)
}
