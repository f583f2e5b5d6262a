//! `harness merge DIR…`: one run folder from the folders of a sharded run's shards, judged
//! as if one process had run it. Nothing is averaged:
//!
//! - the histories are concatenated in scheduled-time order, and the measured latency is
//!   recorded again from every shard's samples; the interval logs are added second by
//!   second (the shards started at one instant, so their seconds are the same seconds);
//! - the books before the load are the last a shard read before it (every shard seeded
//!   its own users before reading them, and none sent a transfer before the agreed start),
//!   the books after it the last a shard read after it (the books only grow); the saga log
//!   likewise; the indeterminate answers' resolutions and the money samples are every
//!   shard's;
//! - the outcome counts are summed, the generator's send lag is the worst shard's, and the
//!   faults are those the owning shard (0) applied;
//!
//! then the reconciliation, the phases, the SLO and the verdict are the ones a single run
//! makes, and `summary.json` says `shards`.

use super::error::RunError;
use super::folder::{write_json, PROFILE_FILE, SYSTEM_FILE, TARGET_FILE_COPY};
use super::summarize;
use crate::cpu::CpuUse;
use crate::history::{self, HistoryRecord};
use crate::profile::plan::{RunPlan, Shard};
use crate::reconcile::evidence::{read_json, HISTORY_FILE};
use crate::reconcile::{self, Books, Convergence, Evidence, RECONCILIATION_FILE};
use crate::stats::{self, latency_of, new_histogram, IntervalLog, Intervals, Requests};
use crate::summary::{Summary, SUMMARY_FILE};
use crate::{phases, profile, provenance, report, slo, verdict};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The interval log of a run folder.
const LATENCY_LOG_FILE: &str = "latency.hlog";

/// One shard's folder, read.
struct ShardRun {
    dir: PathBuf,
    shard: Shard,
    summary: Summary,
    evidence: Evidence,
    log: IntervalLog,
}

fn refused(why: String) -> RunError {
    RunError::Shard(format!("harness merge: {why}"))
}

fn read_shard(dir: &Path) -> Result<ShardRun, RunError> {
    let summary: Summary = read_json(dir, SUMMARY_FILE)?;
    let shard = summary.shard.ok_or_else(|| {
        refused(format!(
            "{} is not a shard's folder (its summary names no shard)",
            dir.display()
        ))
    })?;
    let evidence = Evidence::load(dir)?;
    let path = dir.join(LATENCY_LOG_FILE);
    let log = IntervalLog::read(&path).map_err(|detail| RunError::Input { path, detail })?;
    Ok(ShardRun {
        dir: dir.to_owned(),
        shard,
        summary,
        evidence,
        log,
    })
}

/// Every shard of one run, once each, in shard order.
fn check_complete(mut shards: Vec<ShardRun>) -> Result<Vec<ShardRun>, RunError> {
    shards.sort_by_key(|s| s.shard.index);
    let Some(first) = shards.first() else {
        return Err(refused("no folder given".into()));
    };
    let (count, profile, seed) = (
        first.shard.count,
        first.summary.profile.clone(),
        first.summary.seed,
    );
    for (expected, s) in shards.iter().enumerate() {
        if s.summary.profile != profile || s.summary.seed != seed {
            return Err(refused(format!(
                "{} is of profile `{}` seed {}, {} of `{profile}` seed {seed}: not one run",
                s.dir.display(),
                s.summary.profile,
                s.summary.seed,
                first.dir.display()
            )));
        }
        if s.shard.count != count {
            return Err(refused(format!(
                "{} is shard {} and {} is shard {}: not one run",
                first.dir.display(),
                first.shard,
                s.dir.display(),
                s.shard
            )));
        }
        if s.shard.index as usize != expected {
            let what = if (s.shard.index as usize) < expected {
                format!("shard {} is given twice", s.shard)
            } else {
                format!("shard {expected}/{count} is missing")
            };
            return Err(refused(what));
        }
    }
    if shards.len() != count as usize {
        return Err(refused(format!(
            "shard {}/{count} is missing",
            shards.len()
        )));
    }
    Ok(shards)
}

fn accounts(books: &Books) -> usize {
    books.external_before.accounts.len() + books.ledger_before.accounts.len()
}

fn entries(books: &Books) -> usize {
    books.external_after.entries.len() + books.ledger_after.entries.len()
}

/// The books before the load (the read that holds the most accounts: the last, since every
/// shard seeded before reading) and after it (the read that holds the most entries: the
/// last, since entries are only added). Shards whose books before the load hold different
/// entries did not all read them before it began.
fn books_of(shards: &[ShardRun]) -> Result<Option<Books>, RunError> {
    let all: Vec<(&ShardRun, &Books)> = shards
        .iter()
        .filter_map(|s| s.evidence.books.as_ref().map(|b| (s, b)))
        .collect();
    if all.len() < shards.len() {
        return Ok(None);
    }
    // Before the agreed start no shard sent a transfer: every shard read the same entries
    // (none, or those of earlier runs on a reused system).
    let entries_before =
        |b: &Books| b.external_before.entries.len() + b.ledger_before.entries.len();
    if let Some((first, books)) = all.first() {
        for (s, other) in &all[1..] {
            if entries_before(other) != entries_before(books) {
                return Err(refused(format!(
                    "{} and {} read different entries before the load ({} and {}): one read the books after transfers had begun",
                    first.dir.display(),
                    s.dir.display(),
                    entries_before(books),
                    entries_before(other)
                )));
            }
        }
    }
    let before = all.iter().max_by_key(|(_, b)| accounts(b)).map(|(_, b)| *b);
    let after = all.iter().max_by_key(|(_, b)| entries(b)).map(|(_, b)| *b);
    Ok(before.zip(after).map(|(before, after)| Books {
        external_before: before.external_before.clone(),
        ledger_before: before.ledger_before.clone(),
        external_after: after.external_after.clone(),
        ledger_after: after.ledger_after.clone(),
        // Read again by the shard whose final read is the run's, against that read.
        read_again: after.read_again.clone(),
    }))
}

/// Every shard's evidence as one run's.
fn evidence_of(shards: &[ShardRun]) -> Result<Evidence, RunError> {
    let mut history: Vec<HistoryRecord> = shards
        .iter()
        .flat_map(|s| s.evidence.history.iter().cloned())
        .collect();
    history.sort_by_key(|r| (r.scheduled_us, r.op, r.attempt));
    let convergences: Vec<&Convergence> = shards.iter().map(|s| &s.evidence.convergence).collect();
    let convergence = Convergence {
        sagas: convergences
            .iter()
            .filter_map(|c| c.sagas.as_ref())
            .max_by_key(|d| d.sagas.len())
            .cloned(),
        converged: convergences.iter().all(|c| c.converged),
        convergence_ms: convergences
            .iter()
            .map(|c| c.convergence_ms)
            .try_fold(0u64, |most, ms| ms.map(|ms| most.max(ms))),
        polled: None,
    };
    let mut samples: Vec<_> = shards
        .iter()
        .flat_map(|s| s.evidence.samples.iter().cloned())
        .collect();
    samples.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    Ok(Evidence {
        books: books_of(shards)?,
        history,
        convergence,
        resolutions: shards
            .iter()
            .flat_map(|s| s.evidence.resolutions.iter().cloned())
            .collect(),
        samples,
    })
}

/// The outcome counts of every shard, added.
fn requests_of(shards: &[ShardRun]) -> Requests {
    let mut sum = Requests::default();
    for r in shards.iter().map(|s| &s.summary.requests) {
        sum.scheduled += r.scheduled;
        sum.retries += r.retries;
        sum.completed += r.completed;
        sum.failed += r.failed;
        sum.pending += r.pending;
        sum.shed += r.shed;
        sum.errors += r.errors;
        sum.overflow += r.overflow;
    }
    sum
}

/// The measured latency of every shard's operations, recorded again from their samples.
fn measured_latency(history: &[HistoryRecord]) -> Histogram<u64> {
    let mut latency = new_histogram();
    for us in history
        .iter()
        .filter(|r| r.measured)
        .filter_map(|r| r.latency_us)
    {
        latency.saturating_record(us.max(1));
    }
    latency
}

/// The interval logs added second by second.
fn intervals_of(shards: &[ShardRun]) -> Result<Intervals, RunError> {
    let mut sum = Intervals::default();
    for s in shards {
        for (second, h) in s.log.intervals.iter() {
            let mut added = Ok(());
            sum.with_second(second, |slot| added = slot.add(&h));
            added.map_err(|e| RunError::Input {
                path: s.dir.join(LATENCY_LOG_FILE),
                detail: format!("{e:?}"),
            })?;
        }
    }
    Ok(sum)
}

/// The CPU per operation of the whole run: a service's CPU is one process's, which every
/// shard read over the same window, so its share per operation is taken over all the
/// shards' operations; each shard's own generator is a process of its own, so theirs add.
fn cpu_of(shards: &[ShardRun]) -> CpuUse {
    let operations: u64 = shards.iter().map(|s| s.summary.cpu.operations).sum();
    if operations == 0 || shards.iter().any(|s| s.summary.cpu.operations == 0) {
        return CpuUse::default();
    }
    let mut ms_per_operation = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> = shards
        .iter()
        .flat_map(|s| s.summary.cpu.ms_per_operation.keys())
        .collect();
    for name in names {
        let spent: Vec<f64> = shards
            .iter()
            .filter_map(|s| {
                let ms = s.summary.cpu.ms_per_operation.get(name)?;
                Some(ms * s.summary.cpu.operations as f64)
            })
            .collect();
        let total = if name == crate::cpu::HARNESS {
            spent.iter().sum::<f64>()
        } else {
            spent.iter().sum::<f64>() / spent.len() as f64
        };
        ms_per_operation.insert(name.clone(), total / operations as f64);
    }
    CpuUse {
        window_s: shards
            .iter()
            .map(|s| s.summary.cpu.window_s)
            .fold(0.0, f64::max),
        operations,
        ms_per_operation,
        host: shards[0].summary.cpu.host,
    }
}

/// The connections each hop accepted, added over the shards.
fn connections_of(shards: &[ShardRun]) -> Option<BTreeMap<String, u64>> {
    let mut sum = BTreeMap::new();
    for s in shards {
        for (hop, n) in s.summary.connections_by_hop.as_ref()? {
            *sum.entry(hop.clone()).or_insert(0) += n;
        }
    }
    Some(sum)
}

fn plan_of(owner: &ShardRun) -> Result<RunPlan, RunError> {
    Ok(profile::load(&owner.dir.join(PROFILE_FILE))?.1)
}

/// Merges the shards' folders `dirs` into the folder `out` (created), and returns the
/// merged summary.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Summary, RunError> {
    let shards = check_complete(
        dirs.iter()
            .map(|d| read_shard(d))
            .collect::<Result<Vec<_>, _>>()?,
    )?;
    let owner = &shards[0];
    let plan = plan_of(owner)?;
    std::fs::create_dir_all(out).map_err(|source| RunError::Output {
        path: out.to_owned(),
        source,
    })?;
    let evidence = evidence_of(&shards)?;
    let reconciliation = reconcile::reconcile(&evidence);
    let violations = reconciliation.violations.clone();
    evidence.save(out)?;
    history::write_in(out, &evidence.history).map_err(|source| RunError::Output {
        path: out.join(HISTORY_FILE),
        source,
    })?;
    write_json(&out.join(RECONCILIATION_FILE), &reconciliation)?;
    let start = owner.log.start.unwrap_or_else(SystemTime::now);
    let log_path = out.join(LATENCY_LOG_FILE);
    stats::write_interval_log(&log_path, &intervals_of(&shards)?, start).map_err(|source| {
        RunError::Output {
            path: log_path,
            source,
        }
    })?;
    // What a replay needs: the profile as run and how shard 0 reached the system (a
    // replay drives it as one process).
    for file in [PROFILE_FILE, SYSTEM_FILE, TARGET_FILE_COPY] {
        let from = owner.dir.join(file);
        if file != PROFILE_FILE && !from.exists() {
            continue;
        }
        let path = out.join(file);
        std::fs::copy(&from, &path).map_err(|source| RunError::Output { path, source })?;
    }

    let requests = requests_of(&shards);
    let latency = measured_latency(&evidence.history);
    let faults = owner.summary.faults.clone();
    let phases = phases::phases(&evidence.history, &faults, plan.total().as_secs_f64());
    let judged_slo = slo::judge(&plan.slo, &latency, &phases, &requests);
    let mut invariants = reconciliation.invariants;
    invariants.push(judged_slo.invariant);
    let worst = |f: fn(&Summary) -> f64| shards.iter().map(|s| f(&s.summary)).fold(0.0, f64::max);
    let judged = verdict::judge(
        &invariants,
        judged_slo.error_budget_exceeded,
        summarize::generator_load(
            worst(|s| s.generator.send_lag_ms_p99),
            worst(|s| s.generator.send_lag_ms_max),
            judged_slo.result.p99_ms,
            requests.overflow,
        ),
    );
    let mut errors_by_kind = BTreeMap::new();
    for (kind, n) in shards.iter().flat_map(|s| &s.summary.errors_by_kind) {
        *errors_by_kind.entry(kind.clone()).or_insert(0) += n;
    }
    let mut error_examples = BTreeMap::new();
    for (kind, example) in shards.iter().flat_map(|s| &s.summary.error_examples) {
        error_examples
            .entry(kind.clone())
            .or_insert_with(|| example.clone());
    }
    let duration_s = owner.summary.duration_s;
    let summary = Summary {
        verdict: judged.verdict,
        verdict_reasons: judged.reasons,
        throughput_rps: requests.completed as f64 / duration_s.max(f64::EPSILON),
        latency_ms: latency_of(&latency),
        requests,
        errors_by_kind,
        error_examples,
        phases,
        slo: judged_slo.result,
        generator: judged.generator,
        cpu: cpu_of(&shards),
        connections_by_hop: connections_of(&shards),
        money: reconciliation.money,
        invariants,
        anomalies: reconciliation.anomalies,
        convergence_ms: evidence.convergence.convergence_ms,
        reconciled_live: None,
        faults,
        shard: None,
        shards: Some(owner.shard.count),
        interrupted_at_s: shards.iter().find_map(|s| s.summary.interrupted_at_s),
        git_revision: if shards
            .iter()
            .all(|s| s.summary.git_revision == owner.summary.git_revision)
        {
            owner.summary.git_revision.clone()
        } else {
            provenance::git_revision()
        },
        ..owner.summary.clone()
    };
    write_json(&out.join(SUMMARY_FILE), &summary)?;
    report::write(out, &summary, &violations)?;
    Ok(summary)
}
