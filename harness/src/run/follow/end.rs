//! The end of a followed run: the final read (until the totals are what the entries read
//! explain), the books read again by pages once at rest, the evidence saved, and the
//! verdict: the live one, or the whole folder's when a fact came late or the pages do not
//! explain the balances.

use super::{idle, index, track, Followed, Follower, CONVERGE_POLL, SIDES};
use crate::reconcile::evidence::FactFiles;
use crate::reconcile::live::{named_in, Ending};
use crate::reconcile::read_again::{BalanceChange, BooksChange, ReadAgain};
use crate::reconcile::{self, Books, Convergence, Evidence, Sample};
use crate::run::error::RunError;
use crate::run::resolve;
use crate::run::settle::{self, Settle};
use service::contract::{AccountBalance, Dump, SagaDump, TransferRecord};
use service::money::AmountCents;
use std::collections::BTreeMap;
use std::path::Path;

/// How many times the final read is tried before the pages are found not to explain the
/// balances.
const FINAL_READ_TRIES: usize = 5;

impl Follower {
    /// The final read (the books the verdict rests on), the books read again once at rest,
    /// the evidence saved and the verdict: the live one, or the whole folder's when a fact
    /// came late or the pages do not explain the balances.
    pub(in crate::run) async fn finish(
        mut self,
        before: (Dump, Dump),
        mut convergence: Convergence,
        samples: Vec<Sample>,
        settle: &Settle,
        interrupted: bool,
        out: &Path,
    ) -> Result<Followed, RunError> {
        let whole_because = self.final_read().await;
        let mut whole_because: Vec<String> = whole_because.into_iter().collect();
        let now_ms = self.now_ms();
        let part = self.live().remaining(now_ms);
        let resolutions = resolve::resolve(&self.lookup, &part.history, Some(&part.sagas)).await;
        let written = self.files.as_mut().map(|f| {
            f.sagas(&part.sagas.sagas)?;
            f.resolutions(&resolutions)
        });
        written.transpose().map_err(|source| RunError::Output {
            path: out.to_path_buf(),
            source,
        })?;
        let (when, again) = settle::settled(settle, interrupted, || self.read_again()).await;
        let read_again = match again {
            Ok((external, ledger)) => ReadAgain {
                when,
                error: None,
                external,
                ledger,
            },
            Err(why) => ReadAgain::failed(when, why),
        };
        let finished = self.files.take().map(FactFiles::finish);
        finished.transpose().map_err(|source| RunError::Output {
            path: out.to_path_buf(),
            source,
        })?;
        let accounts = [
            accounts_of(&self.balances[0]),
            accounts_of(&self.balances[1]),
        ];
        let design = (!self.design.is_empty()).then(|| self.design.clone());
        let convergence_ms = convergence.convergence_ms;
        convergence.sagas = Some(SagaDump {
            design: self.design.clone(),
            sagas: Vec::new(),
        });
        let saved = Evidence {
            books: Some(Books {
                external_before: before.0.clone(),
                ledger_before: before.1.clone(),
                external_after: dump_of(accounts[0].clone(), std::mem::take(&mut self.tombstones)),
                ledger_after: dump_of(accounts[1].clone(), Vec::new()),
                read_again: Some(read_again.clone()),
            }),
            history: Vec::new(),
            convergence: convergence.clone(),
            // In `resolutions.jsonl.zst`, written as each part was judged.
            resolutions: Vec::new(),
            samples: samples.clone(),
        };
        saved.save(out)?;
        drop(saved);
        let mut live = self.live.take().unwrap_or_else(idle);
        // Requests judged with no answer are looked up in the folder: a fact that came for a
        // transfer judged long before shows there.
        let mut unanswered = live.unanswered().clone();
        unanswered.extend(part.unanswered());
        let folder = out.to_path_buf();
        let named = tokio::task::spawn_blocking(move || named_in(&folder, &unanswered)).await?;
        match named {
            Ok(named) => named.into_iter().for_each(|what| live.found_late(what)),
            Err(err) => whole_because.push(format!("the folder could not be read back: {err}")),
        }
        if live.counts.late_facts > 0 {
            whole_because.push(format!(
                "{} facts arrived for requests already judged",
                live.counts.late_facts
            ));
        }
        let [external_accounts, ledger_accounts] = accounts;
        let ending = Ending {
            external_before: before.0,
            ledger_before: before.1,
            external_accounts,
            ledger_accounts,
            convergence,
            samples,
            read_again: Some(read_again),
        };
        let mut reconciliation =
            tokio::task::spawn_blocking(move || live.finish(part, resolutions, ending)).await?;
        if !whole_because.is_empty() {
            let mut report = reconciliation.live.take().unwrap_or_default();
            report.whole_because = Some(whole_because.join("; "));
            drop(reconciliation);
            let out = out.to_path_buf();
            reconciliation = tokio::task::spawn_blocking(move || {
                Evidence::load(&out).map(|evidence| reconcile::reconcile(&evidence))
            })
            .await??;
            reconciliation.live = Some(report);
        }
        Ok(Followed {
            reconciliation,
            convergence_ms,
            design,
        })
    }

    /// The final read: the pages read until both sides' totals are what the entries read
    /// explain (money still moving makes the two reads differ for a while). Why the final
    /// books cannot be trusted, if they cannot.
    async fn final_read(&mut self) -> Option<String> {
        let mut why = None;
        for _ in 0..FINAL_READ_TRIES {
            if !self.step().await {
                why = Some("the final read by pages failed".to_owned());
            } else {
                let unexplained = self.unexplained_totals().await;
                if unexplained.is_empty() {
                    return None;
                }
                why = Some(unexplained.join("; "));
            }
            tokio::time::sleep(CONVERGE_POLL).await;
        }
        why
    }

    /// Each side's total as `/admin/totals` gives it, against the balances the entries read
    /// leave: a balance that moved with no entry, or an entry the pages never showed.
    async fn unexplained_totals(&mut self) -> Vec<String> {
        let mut unexplained = Vec::new();
        for side in SIDES {
            let i = index(side);
            let tracked: u64 = self.balances[i].values().sum();
            match self.admin.totals(&self.bases[i]).await {
                Ok(totals)
                    if totals.total_cents == tracked
                        && totals.accounts == self.balances[i].len() as u64 => {}
                Ok(totals) => unexplained.push(format!(
                    "{side:?} totals {} over {} accounts, the entries read explain {tracked} over {}",
                    totals.total_cents,
                    totals.accounts,
                    self.balances[i].len()
                )),
                Err(err) => unexplained.push(format!("{side:?} totals not readable: {err}")),
            }
        }
        unexplained
    }

    /// The books read again by pages: what each side appended after the final read, and the
    /// balances that moved (a balance that moved with no entry shows as the total's change).
    async fn read_again(&mut self) -> Result<(BooksChange, BooksChange), String> {
        let mut changes = [BooksChange::default(), BooksChange::default()];
        for side in SIDES {
            let i = index(side);
            let mut cursor = self.cursors[i];
            let mut again = self.balances[i].clone();
            loop {
                let page = self
                    .admin
                    .dump_page(&self.bases[i], cursor)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the books no longer read by pages")?;
                cursor = page.next;
                track(&mut again, &page.entries);
                changes[i].entries_added.extend(page.entries);
                if !page.more {
                    break;
                }
            }
            let names = again.keys().chain(self.balances[i].keys());
            let mut names: Vec<&String> = names.collect();
            names.sort_unstable();
            names.dedup();
            for name in names {
                let (last, now) = (self.balances[i].get(name), again.get(name));
                if last != now {
                    changes[i].balances_changed.push(BalanceChange {
                        account_id: name.clone(),
                        final_cents: last.copied(),
                        again_cents: now.copied(),
                    });
                }
            }
            let totals = self
                .admin
                .totals(&self.bases[i])
                .await
                .map_err(|e| e.to_string())?;
            let explained: u64 = again.values().sum();
            if totals.total_cents != explained {
                let tracked: u64 = self.balances[i].values().sum();
                changes[i].balances_changed.push(BalanceChange {
                    account_id: "(every account: the total)".to_owned(),
                    final_cents: Some(tracked),
                    again_cents: Some(totals.total_cents),
                });
            }
        }
        let [external, ledger] = changes;
        Ok((external, ledger))
    }
}

fn accounts_of(balances: &BTreeMap<String, u64>) -> Vec<AccountBalance> {
    balances
        .iter()
        .map(|(account_id, &cents)| AccountBalance {
            account_id: account_id.clone(),
            balance_cents: AmountCents::new(cents),
        })
        .collect()
}

fn dump_of(accounts: Vec<AccountBalance>, transfers: Vec<TransferRecord>) -> Dump {
    Dump {
        accounts,
        entries: Vec::new(),
        transfers,
    }
}
