//! How busy the host's CPUs are, from `/proc/stat`: the share of CPU time that was idle, or
//! taken by the hypervisor for other guests (steal), between two readings. A service uses the
//! idle share to tell "this machine cannot do more" from "a dependency is slow"; the harness
//! records both for the time its load ran (Linux only; elsewhere nothing is known).

use std::time::Instant;

/// The host's cumulative CPU time, in the kernel's ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTicks {
    /// Every state's time added up.
    pub total: u64,
    /// Idle and waiting on I/O.
    pub idle: u64,
    /// Taken by the hypervisor for other guests while this one had work (0 on bare metal).
    pub steal: u64,
}

impl CpuTicks {
    /// Reads the aggregate `cpu` line of `/proc/stat`; None where it cannot be read.
    pub fn read() -> Option<CpuTicks> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        parse_cpu_line(text.lines().next()?)
    }

    /// The share of the time between `earlier` and `self` the CPUs were idle (0..=1); None
    /// when no time passed.
    pub fn idle_share_since(&self, earlier: &CpuTicks) -> Option<f64> {
        self.share_since(earlier, |t| t.idle)
    }

    /// The share of the time between `earlier` and `self` the hypervisor gave to other guests
    /// (0..=1); None when no time passed.
    pub fn steal_share_since(&self, earlier: &CpuTicks) -> Option<f64> {
        self.share_since(earlier, |t| t.steal)
    }

    fn share_since(&self, earlier: &CpuTicks, part: fn(&CpuTicks) -> u64) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let part = part(self).checked_sub(part(earlier))?;
        (total > 0).then(|| (part as f64 / total as f64).clamp(0.0, 1.0))
    }
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`: guest time is
/// already counted in user time, so it is left out of the total.
fn parse_cpu_line(line: &str) -> Option<CpuTicks> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields.map(|f| f.parse().ok()).collect::<Option<_>>()?;
    if values.len() < 4 {
        return None;
    }
    let counted = values.len().min(8);
    let total = values[..counted]
        .iter()
        .try_fold(0u64, |a, v| a.checked_add(*v))?;
    let idle = values[3].checked_add(values.get(4).copied().unwrap_or(0))?;
    let steal = values.get(7).copied().unwrap_or(0);
    Some(CpuTicks { total, idle, steal })
}

/// Successive readings, each giving the idle share since the one before.
pub struct IdleMeter {
    last: Option<(Instant, CpuTicks)>,
}

impl IdleMeter {
    pub fn new() -> IdleMeter {
        IdleMeter {
            last: CpuTicks::read().map(|t| (Instant::now(), t)),
        }
    }

    /// The idle share since the last call (or since `new`); None when unknown.
    pub fn sample(&mut self) -> Option<f64> {
        let now = CpuTicks::read()?;
        let share = self
            .last
            .as_ref()
            .and_then(|(_, before)| now.idle_share_since(before));
        self.last = Some((Instant::now(), now));
        share
    }
}

impl Default for IdleMeter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_line_gives_idle_and_total_ticks() {
        let t = parse_cpu_line("cpu  100 10 50 800 40 0 5 3 7 0").expect("parsed");
        assert_eq!(
            t,
            CpuTicks {
                total: 1008,
                idle: 840,
                steal: 3
            }
        );
        let later = CpuTicks {
            total: 1108,
            idle: 860,
            steal: 28,
        };
        assert_eq!(later.idle_share_since(&t), Some(0.2));
        assert_eq!(later.steal_share_since(&t), Some(0.25));
        assert_eq!(t.idle_share_since(&t), None, "no time passed");
        assert_eq!(
            parse_cpu_line("cpu 1 2 3 4").map(|t| t.steal),
            Some(0),
            "an old kernel without the steal column"
        );
        assert!(parse_cpu_line("cpu0 1 2 3 4").is_none());
        assert!(parse_cpu_line("cpu 1 2 x 4").is_none());
    }

    #[test]
    fn this_host_can_be_read() {
        if cfg!(target_os = "linux") {
            let t = CpuTicks::read().expect("/proc/stat");
            assert!(t.total >= t.idle + t.steal);
        }
    }
}
