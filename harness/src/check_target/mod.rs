//! `harness check-target`: a conformance probe that walks `docs/contract.md` against a
//! running system, without load, in a few seconds: every client error the contract names
//! (with its status and its JSON error body), a transfer and its replay under the same key,
//! the key reused with another payload, `GET /transfers/{id}`, and the admin routes a run
//! needs (seeding, the institutions' dumps; the saga log and totals, which are optional). It
//! seeds a user and two accounts of its own, named apart from any run's.
//!
//! - `probe`: the URLs, the HTTP client, how answers are read, and the findings.
//! - `rules`: the contract's rules, walked in order.

mod mapped;
mod probe;
mod rules;

pub use probe::{CheckedUrls, Conformance, Finding};
pub use rules::check;

use crate::cli::CheckTargetArgs;

impl CheckTargetArgs {
    /// The system from the flags or the target file.
    fn target(&self) -> Result<crate::system::target_file::TargetFile, String> {
        Ok(match (&self.target_file, &self.target) {
            (Some(file), _) => crate::system::target_file::load(file).map_err(|e| e.to_string())?,
            (None, Some(url)) => crate::system::target_file::TargetFile::from_urls(
                url,
                self.external_url.as_deref(),
                self.ledger_url.as_deref(),
            ),
            (None, None) => return Err("--target URL or --target-file FILE is required".into()),
        })
    }
}

/// The findings as a table.
pub fn render(findings: &[Finding]) -> String {
    let width = findings.iter().map(|f| f.rule.len()).max().unwrap_or(0);
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{:width$}  {:<9} {}\n",
            f.rule,
            f.conformance.as_str(),
            f.detail
        ));
    }
    let violations = findings
        .iter()
        .filter(|f| f.conformance == Conformance::Violates)
        .count();
    out.push_str(&if violations == 0 {
        format!("conforms: {} rules checked, no violation\n", findings.len())
    } else {
        format!("{violations} of {} rules violated\n", findings.len())
    });
    out
}

/// `harness check-target`: exit 0 when nothing is violated, 1 otherwise, 2 when the probe
/// could not start. With a target file, its hops are up while the probe runs (the
/// coordinator reaches its upstreams through them).
pub async fn run(args: CheckTargetArgs) -> i32 {
    if let Ok(target) = args.target() {
        if let Some(api) = target.compiled_api() {
            return run_mapped(&target, &api).await;
        }
    }
    let target = match args
        .target()
        .and_then(|t| CheckedUrls::of(&t).map(|u| (t, u)))
    {
        Ok(found) => found,
        Err(e) => {
            eprintln!("harness check-target: error: {e}");
            return 2;
        }
    };
    let (target, urls) = target;
    let _hops =
        match crate::system::attach::attach(&target, 1, None, crate::profile::plan::Shard::WHOLE)
            .await
        {
            Ok(attached) => attached,
            Err(e) => {
                eprintln!("harness check-target: error: the target's hops: {e}");
                return 2;
            }
        };
    match check(&urls).await {
        Ok(findings) => {
            print!("{}", render(&findings));
            i32::from(
                findings
                    .iter()
                    .any(|f| f.conformance == Conformance::Violates),
            )
        }
        Err(e) => {
            eprintln!("harness check-target: error: {e}");
            2
        }
    }
}

/// `check-target` on a system described by a mapping: its rules (`mapped`), exit 0, 1, or 2
/// for a fault of the mapping itself.
async fn run_mapped(
    target: &crate::system::target_file::TargetFile,
    api: &crate::mapping::CompiledApi,
) -> i32 {
    let attached =
        match crate::system::attach::attach(target, 1, None, crate::profile::plan::Shard::WHOLE)
            .await
        {
            Ok(attached) => attached,
            Err(e) => {
                eprintln!("harness check-target: error: the target's hops: {e}");
                return 2;
            }
        };
    let http = match reqwest::Client::builder().no_proxy().build() {
        Ok(http) => http,
        Err(e) => {
            eprintln!("harness check-target: error: {e}");
            return 2;
        }
    };
    let admin = crate::system::admin::AdminClient::new(http);
    match mapped::check(&admin, &attached.endpoints, api).await {
        Ok(findings) => {
            print!("{}", render(&findings));
            i32::from(
                findings
                    .iter()
                    .any(|f| f.conformance == Conformance::Violates),
            )
        }
        Err(e) => {
            eprintln!("harness check-target: error: the mapping: {e}");
            2
        }
    }
}
