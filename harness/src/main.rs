//! `harness`: parses the command line and runs a profile, or (as `harness serve <role>`)
//! one service of the reference system. Exit codes: 0 pass, 1 fail or unknown, 2 the harness
//! could not run (or its generator could not keep up), 3 the run was asked to end early
//! (SIGTERM or Ctrl-C): its faults healed, its partial folder written and marked so.

use clap::Parser;
use harness::cli::{Cli, Command, MergeArgs, ReplayArgs, RunArgs, RunDirArgs, ToxiproxyArgs};
use harness::system::launch::PARENT_PID_ENV;

fn main() {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(Command::BenchGenerator(args)) = &cli.command {
        // Pinned before the runtime starts, so every runtime thread inherits the core; one
        // worker thread, so the generator's tasks never wake each other across threads.
        if let Err(e) = harness::bench::pin_to_core(args.generator_core) {
            eprintln!("harness: error: {e:#}");
            std::process::exit(2);
        }
        builder.worker_threads(1);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("harness: error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = match cli.command {
        Some(Command::Ab(args)) => match harness::ab::run(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("harness ab: error: {e}");
                2
            }
        },
        Some(Command::Serve { role }) => {
            die_with_parent();
            service::server::init_logging();
            match runtime.block_on(service::cli::run(role)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("harness serve: error: {e:#}");
                    2
                }
            }
        }
        Some(Command::Run(args)) => run(&runtime, args),
        Some(Command::BenchProxy(args)) => {
            match runtime.block_on(harness::bench::run_proxy(args)) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("harness: error: {e:#}");
                    2
                }
            }
        }
        Some(Command::Toxiproxy(args)) => runtime.block_on(toxiproxy(args)),
        Some(Command::Reconcile(RunDirArgs { dir })) => match harness::run::reconcile_again(&dir) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("harness reconcile: error: {e}");
                2
            }
        },
        Some(Command::Merge(MergeArgs { dirs, out })) => {
            match harness::run::merge_shards(&dirs, out) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("harness merge: error: {e}");
                    2
                }
            }
        }
        Some(Command::Report(RunDirArgs { dir })) => match harness::report::regenerate(&dir) {
            Ok(summary) => {
                println!(
                    "{}: {} and {} rebuilt (verdict {})",
                    dir.display(),
                    harness::report::MARKDOWN_FILE,
                    harness::report::HTML_FILE,
                    summary.verdict.as_str()
                );
                0
            }
            Err(e) => {
                eprintln!("harness report: error: {e}");
                2
            }
        },
        Some(Command::CheckTarget(args)) => runtime.block_on(harness::check_target::run(args)),
        Some(Command::Capacity(args)) => match runtime.block_on(harness::capacity::run(args)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("harness capacity: error: {e}");
                2
            }
        },
        Some(Command::BenchReconcile(args)) => harness::bench::reconcile::run(&runtime, &args),
        Some(Command::Replay(args)) => replay(&runtime, args),
        Some(Command::Shrink(args)) => shrink(&runtime, args),
        Some(Command::Mutants(args)) => runtime.block_on(harness::mutants::run(args)),
        Some(Command::Compare(args)) => harness::compare::run(&args),
        Some(Command::Trend(args)) => match harness::trend::run(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("harness trend: error: {e}");
                2
            }
        },
        Some(Command::Baseline(args)) => match runtime.block_on(harness::baseline::record(args)) {
            Ok(kept) => {
                println!("baseline kept in {}", kept.display());
                0
            }
            Err(e @ harness::baseline::BaselineError::NotPassed(..)) => {
                eprintln!("harness baseline: {e}");
                1
            }
            Err(e) => {
                eprintln!("harness baseline: error: {e}");
                2
            }
        },
        Some(Command::BenchGenerator(args)) => match runtime.block_on(harness::bench::run(args)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("harness: error: {e:#}");
                2
            }
        },
        None => run(&runtime, cli.run),
    };
    drop(runtime);
    std::process::exit(code);
}

fn run(runtime: &tokio::runtime::Runtime, args: RunArgs) -> i32 {
    let mut options = match args.into_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("harness: error: {e}");
            return 2;
        }
    };
    let interrupt = options.interrupt.clone();
    runtime.block_on(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        options.interrupt = interrupt.clone();
        let run = harness::run::run(options);
        tokio::pin!(run);
        let code_of = |result: Result<i32, harness::run::RunError>| match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("harness: error: {e}");
                2
            }
        };
        tokio::select! {
            result = &mut run => return code_of(result),
            signal = next_signal(&mut term) => {
                eprintln!(
                    "harness: {signal} signal: stopping the load, healing every fault applied so far and writing the partial run (exit {}); signal again to stop at once",
                    harness::run::INTERRUPTED_EXIT
                );
                interrupt.request();
            }
        }
        tokio::select! {
            result = &mut run => code_of(result),
            signal = next_signal(&mut term) => {
                // Dropping the run stops every service it started; faults on a server or
                // system of the user's are left as they are.
                eprintln!("harness: stopped by a second {signal} signal; services stopped");
                2
            }
        }
    })
}

/// `harness replay DIR`: 0 when the replay shows the same anomaly classes, 1 when not.
fn replay(runtime: &tokio::runtime::Runtime, args: ReplayArgs) -> i32 {
    use harness::replay::ReplayDisplay;
    let display = if args.quiet {
        ReplayDisplay::Plain
    } else {
        ReplayDisplay::Live
    };
    match runtime.block_on(harness::replay::replay(&args.dir, args.out, display)) {
        Ok(replayed) => {
            println!("{}", replayed.describe());
            i32::from(!replayed.reproduced())
        }
        Err(e) => {
            eprintln!("harness replay: error: {e}");
            2
        }
    }
}

/// `harness shrink DIR`: a signal stops the run under way and keeps the best so far.
fn shrink(runtime: &tokio::runtime::Runtime, args: harness::cli::ShrinkArgs) -> i32 {
    let interrupt = harness::interrupt::Interrupt::default();
    runtime.block_on(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let shrink = harness::shrink::run(args, interrupt.clone());
        tokio::pin!(shrink);
        let code_of = |result: Result<i32, harness::shrink::ShrinkError>| match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("harness shrink: error: {e}");
                2
            }
        };
        tokio::select! {
            result = &mut shrink => return code_of(result),
            signal = next_signal(&mut term) => {
                eprintln!("harness shrink: {signal} signal: stopping the run under way and keeping the smallest failing run so far");
                interrupt.request();
            }
        }
        code_of(shrink.await)
    })
}

/// The next SIGINT (Ctrl-C) or SIGTERM, by name.
async fn next_signal(term: &mut Option<tokio::signal::unix::Signal>) -> &'static str {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupt",
        _ = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        } => "terminate",
    }
}

/// `harness toxiproxy`: the embedded proxy's REST API, standalone, until SIGTERM or Ctrl-C.
async fn toxiproxy(
    ToxiproxyArgs {
        host,
        port,
        seed,
        token,
        max_connections,
    }: ToxiproxyArgs,
) -> i32 {
    if token.is_none() && !binds_loopback_only(&host) {
        eprintln!(
            "harness toxiproxy: error: --host {host} can be reached from other machines: give --token (or HARNESS_TOXIPROXY_TOKEN), which their requests must carry as Authorization: Bearer TOKEN"
        );
        return 2;
    }
    let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("harness toxiproxy: error: cannot listen on {host}:{port}: {e}");
            return 2;
        }
    };
    println!("toxiproxy API listening on http://{host}:{port}");
    let registry = harness::proxy::Registry::with_link_limit(seed, max_connections);
    let access = harness::proxy::api::Access { token };
    match harness::proxy::api::serve(
        listener,
        registry,
        access,
        service::server::shutdown_signal(),
    )
    .await
    {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("harness toxiproxy: error: {e}");
            2
        }
    }
}

/// Whether `host` only ever binds loopback addresses (`localhost`, `127.x`, `::1`).
fn binds_loopback_only(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A service started by the harness dies with it, even if the harness is SIGKILLed.
fn die_with_parent() {
    let Ok(expected) = std::env::var(PARENT_PID_ENV) else {
        return;
    };
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    // The parent may have died before the line above: then our parent is someone else.
    if nix::unistd::getppid().as_raw().to_string() != expected {
        std::process::exit(2);
    }
}
