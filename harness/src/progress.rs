//! The live progress line: elapsed time, rate, p99 so far, outcomes, active faults. On a terminal it is an
//! indicatif line redrawn in place; otherwise (CI, `--quiet`) a plain line every few seconds.

use crate::history::Outcome;
use crate::stats::LiveStats;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Progress {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn line(live: &LiveStats, started: Instant, total: Duration) -> String {
    let snap = live.snapshot();
    let elapsed = started.elapsed().as_secs_f64();
    let rate = snap.scheduled as f64 / elapsed.max(0.001);
    let outcomes: Vec<String> = Outcome::ALL
        .iter()
        .zip(snap.outcomes.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(o, n)| format!("{} {n}", o.as_str()))
        .collect();
    let violations = match live.violations() {
        0 => String::new(),
        n => format!("  VIOLATIONS {n}"),
    };
    format!(
        "{elapsed:>5.1}/{:.0}s  {rate:>7.0} req/s  p99 {}  {}  faults: {}{violations}",
        total.as_secs_f64(),
        snap.p99_ms
            .map_or_else(|| "-".to_owned(), |p| format!("{p:.1} ms")),
        if outcomes.is_empty() {
            "waiting".to_owned()
        } else {
            outcomes.join(", ")
        },
        {
            let active = live.active_faults();
            if active.is_empty() {
                "none".to_owned()
            } else {
                active.join(", ")
            }
        }
    )
}

/// How a run shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A live line on a terminal, plain lines otherwise.
    Auto,
    /// Plain lines (CI, `--quiet`).
    Plain,
    /// Nothing (a run inside another command, such as a capacity step).
    Off,
}

impl Progress {
    pub fn start(live: Arc<LiveStats>, total: Duration, display: Display) -> Progress {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let interactive = display == Display::Auto && std::io::stderr().is_terminal();
        let task = tokio::spawn(async move {
            if display == Display::Off {
                let _ = stopped.changed().await;
                return;
            }
            let started = Instant::now();
            let bar = interactive.then(|| {
                let bar = ProgressBar::new_spinner();
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                    bar.set_style(style);
                }
                bar
            });
            let every = if interactive {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(5)
            };
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => break,
                }
                let text = line(&live, started, total);
                match &bar {
                    Some(bar) => bar.set_message(text),
                    None => eprintln!("harness: {text}"),
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            eprintln!("harness: {}", line(&live, started, total));
        });
        Progress { stop, task }
    }

    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
