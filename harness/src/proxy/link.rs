//! One proxied connection: client ↔ upstream, each direction through the toxics of its
//! stream. A direction keeps reading while chunks wait for their release time, so latency
//! is applied per chunk from its arrival (it does not accumulate), and bytes are never
//! reordered. At EOF everything queued is written before the write side is shut, so a
//! response followed by a close arrives whole. Toxics may change at any time; the link sees
//! the change at once and keeps its connections.

use super::toxic::{Kind, Stream, Toxic};
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// How the connection ends when a toxic ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    Close = 1,
    Reset = 2,
}

/// What wakes a link besides its sockets: its proxy's toxics changing (the proxy calls
/// `wake`), or one of its two directions ending the connection. Waiting on it costs one
/// atomic registration of the task's waker, polled after every read; waiting on the
/// proxy's toxics watch took a lock that every connection of the proxy shares.
#[derive(Default)]
pub(super) struct LinkSignal {
    waker: AtomicWaker,
    /// 0 while the connection lives, else a `Kill` (the last one sent wins).
    kill: AtomicU8,
}

/// Why a wait on a `LinkSignal` ended.
enum Interrupt {
    ToxicsChanged,
    Killed,
    /// The proxy is gone.
    Closed,
}

impl LinkSignal {
    /// Tells the link its toxics changed.
    pub(super) fn wake(&self) {
        self.waker.wake();
    }

    fn kill(&self, kill: Kill) {
        self.kill.store(kill as u8, Ordering::Release);
        self.waker.wake();
    }

    fn killed(&self) -> Option<Kill> {
        match self.kill.load(Ordering::Acquire) {
            1 => Some(Kill::Close),
            2 => Some(Kill::Reset),
            _ => None,
        }
    }

    /// Waits until the connection is killed or `toxics` has changed since it was last read.
    /// The waker is registered before the checks, so a change between them still wakes.
    /// `registered` holds the waker this caller registered last: the same task's waker is
    /// not registered again. A wake takes the waker out, and every wake ends the caller's
    /// wait, so a caller starts each wait after one with None.
    async fn interrupted(
        &self,
        toxics: &watch::Receiver<Arc<Vec<Toxic>>>,
        registered: &mut Option<Waker>,
    ) -> Interrupt {
        poll_fn(|cx| {
            if !registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                self.waker.register(cx.waker());
                *registered = Some(cx.waker().clone());
            }
            if self.killed().is_some() {
                return Poll::Ready(Interrupt::Killed);
            }
            match toxics.has_changed() {
                Ok(true) => Poll::Ready(Interrupt::ToxicsChanged),
                Ok(false) => Poll::Pending,
                Err(_) => Poll::Ready(Interrupt::Closed),
            }
        })
        .await
    }
}

/// Chunks read ahead of the writer, at most.
const READ_AHEAD_CHUNKS: usize = 64;
const READ_BUFFER_BYTES: usize = 32 * 1024;

/// Whether each toxic applies to this connection: decided once per toxic name, from the
/// proxy's seed and the connection's number, so a seed replays the same decisions.
struct Toxicity {
    seed: u64,
    decided: HashMap<String, bool>,
}

impl Toxicity {
    fn applies(&mut self, toxic: &Toxic) -> bool {
        if toxic.toxicity >= 1.0 {
            return true;
        }
        if toxic.toxicity <= 0.0 {
            return false;
        }
        let seed = self.seed;
        *self.decided.entry(toxic.name.clone()).or_insert_with(|| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            toxic.name.hash(&mut hasher);
            let mut rng = SmallRng::seed_from_u64(seed ^ hasher.finish());
            rng.gen::<f64>() < toxic.toxicity
        })
    }
}

struct Direction<'a> {
    stream: Stream,
    src: &'a mut OwnedReadHalf,
    dst: &'a mut OwnedWriteHalf,
    toxics: watch::Receiver<Arc<Vec<Toxic>>>,
    toxicity: Toxicity,
    rng: SmallRng,
    written: i64,
}

/// Serves one accepted client until both directions end.
pub async fn serve(
    client: std::net::TcpStream,
    upstream: String,
    toxics: watch::Receiver<Arc<Vec<Toxic>>>,
    seed: u64,
    signal: Arc<LinkSignal>,
) {
    let Ok(client) = TcpStream::from_std(client) else {
        return;
    };
    let server =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&upstream)).await {
            Ok(Ok(server)) => server,
            _ => return,
        };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = Direction {
        stream: Stream::Upstream,
        src: &mut client_read,
        dst: &mut server_write,
        toxics: toxics.clone(),
        toxicity: Toxicity {
            seed,
            decided: HashMap::new(),
        },
        rng: SmallRng::seed_from_u64(seed.wrapping_add(1)),
        written: 0,
    };
    let down = Direction {
        stream: Stream::Downstream,
        src: &mut server_read,
        dst: &mut client_write,
        toxics,
        toxicity: Toxicity {
            seed,
            decided: HashMap::new(),
        },
        rng: SmallRng::seed_from_u64(seed.wrapping_add(2)),
        written: 0,
    };
    tokio::join!(up.run(&signal), down.run(&signal));
    if signal.killed() == Some(Kill::Reset) {
        if let Ok(client) = client_read.reunite(client_write) {
            // SO_LINGER 0: closing sends RST instead of FIN.
            let _ = client.set_zero_linger();
            drop(client);
        }
    }
}

/// What the active toxics of a direction do to the stream, read off them once per turn.
struct Effects {
    /// `timeout`: swallow data; close after this many ms (0: never).
    black_hole_ms: Option<i64>,
    /// `reset_peer`: reset this long after the first data.
    reset_after: Option<Duration>,
    /// `latency`: (latency, jitter) in ms.
    latency_ms: Option<(i64, i64)>,
    /// `slow_close`: delay the close by this many ms.
    slow_close_ms: Option<i64>,
}

impl Effects {
    fn of(active: &[Kind]) -> Effects {
        Effects {
            black_hole_ms: active.iter().find_map(|k| match k {
                Kind::Timeout { timeout_ms } => Some(*timeout_ms),
                _ => None,
            }),
            reset_after: active.iter().find_map(|k| match k {
                Kind::ResetPeer { timeout_ms } => {
                    Some(Duration::from_millis(timeout_ms.unsigned_abs()))
                }
                _ => None,
            }),
            latency_ms: active.iter().find_map(|k| match k {
                Kind::Latency {
                    latency_ms,
                    jitter_ms,
                } => Some((*latency_ms, *jitter_ms)),
                _ => None,
            }),
            slow_close_ms: active.iter().find_map(|k| match k {
                Kind::SlowClose { delay_ms } => Some(*delay_ms),
                _ => None,
            }),
        }
    }
}

impl Direction<'_> {
    /// The toxics of this direction that apply to this connection, in the order added.
    fn active(&mut self) -> Vec<Kind> {
        let all = self.toxics.borrow_and_update().clone();
        all.iter()
            .filter(|t| t.stream == self.stream)
            .filter(|t| self.toxicity.applies(t))
            .map(Toxic::kind)
            .collect()
    }

    async fn run(mut self, signal: &LinkSignal) {
        let mut queue: VecDeque<(Bytes, Instant)> = VecDeque::new();
        let mut buf = vec![0u8; READ_BUFFER_BYTES];
        let mut eof = false;
        let mut timeout_at: Option<Instant> = None;
        let mut reset_at: Option<Instant> = None;
        let mut bandwidth_debt = Duration::ZERO;
        loop {
            let active = self.active();
            let effects = Effects::of(&active);
            let black_hole = effects.black_hole_ms;
            match black_hole {
                Some(ms) if ms > 0 && timeout_at.is_none() => {
                    timeout_at = Some(Instant::now() + Duration::from_millis(ms.unsigned_abs()))
                }
                Some(_) => {}
                None => timeout_at = None,
            }
            if effects.reset_after.is_none() {
                reset_at = None;
            }
            // No toxic on this direction and nothing queued: copy straight through, still
            // watching for a toxic to arrive or the connection to be killed.
            if active.is_empty() && queue.is_empty() && !eof {
                if !self.pass_through(&mut buf, &mut eof, signal).await {
                    return;
                }
                continue;
            }
            // Each chunk's release time is fixed when it is read (arrival + latency ± jitter).
            // A chunk already due is written at once: a timer, even an expired one, fires
            // only at the timer's next tick (about 1 ms) and would cap a busy proxy.
            let release_at = queue.front().map(|(_, release)| *release);
            if release_at.is_some_and(|at| at <= Instant::now()) {
                if let Some((chunk, _)) = queue.pop_front() {
                    match self.write(chunk, &active, &mut bandwidth_debt).await {
                        Ok(true) => continue,
                        Ok(false) | Err(_) => {
                            signal.kill(Kill::Close);
                            return;
                        }
                    }
                }
            }
            if eof && queue.is_empty() {
                if let Some(ms) = effects.slow_close_ms {
                    tokio::time::sleep(Duration::from_millis(ms.unsigned_abs())).await;
                }
                let _ = self.dst.shutdown().await;
                return;
            }
            let mut unregistered = None;
            tokio::select! {
                read = self.src.read(&mut buf), if !eof && queue.len() < READ_AHEAD_CHUNKS => {
                    match read {
                        Ok(0) | Err(_) => eof = true,
                        Ok(n) => self.take_in(&buf[..n], &effects, &mut queue, &mut reset_at),
                    }
                }
                () = sleep_until_opt(release_at), if release_at.is_some() => {
                    let Some((chunk, _)) = queue.pop_front() else { continue };
                    match self.write(chunk, &active, &mut bandwidth_debt).await {
                        Ok(true) => {}
                        Ok(false) => {
                            signal.kill(Kill::Close);
                            return;
                        }
                        Err(_) => {
                            signal.kill(Kill::Close);
                            return;
                        }
                    }
                }
                () = sleep_until_opt(timeout_at), if timeout_at.is_some() => {
                    signal.kill(Kill::Close);
                    return;
                }
                () = sleep_until_opt(reset_at), if reset_at.is_some() => {
                    signal.kill(Kill::Reset);
                    return;
                }
                interrupt = signal.interrupted(&self.toxics, &mut unregistered) => match interrupt {
                    Interrupt::ToxicsChanged => {}
                    Interrupt::Killed | Interrupt::Closed => return,
                },
            }
        }
    }

    /// Copies straight through until a toxic arrives (true), the source ends (true, with
    /// `eof` set) or the connection is killed or breaks (false). The socket is polled first:
    /// the signal is looked at only when there is nothing to read.
    async fn pass_through(&mut self, buf: &mut [u8], eof: &mut bool, signal: &LinkSignal) -> bool {
        let Direction {
            src,
            dst,
            toxics,
            written,
            ..
        } = self;
        let mut registered = None;
        loop {
            tokio::select! {
                biased;
                read = src.read(buf) => match read {
                    Ok(0) | Err(_) => {
                        *eof = true;
                        return true;
                    }
                    Ok(n) => {
                        if dst.write_all(&buf[..n]).await.is_err() {
                            signal.kill(Kill::Close);
                            return false;
                        }
                        *written += n as i64;
                    }
                },
                interrupt = signal.interrupted(toxics, &mut registered) => {
                    return matches!(interrupt, Interrupt::ToxicsChanged);
                }
            }
        }
    }

    /// What the toxics make of a chunk just read: swallowed (timeout), a reset armed
    /// (reset_peer), or queued for release after the latency.
    fn take_in(
        &mut self,
        data: &[u8],
        effects: &Effects,
        queue: &mut VecDeque<(Bytes, Instant)>,
        reset_at: &mut Option<Instant>,
    ) {
        if effects.black_hole_ms.is_some() {
            // The timeout toxic swallows data.
        } else if let Some(after) = effects.reset_after {
            reset_at.get_or_insert(Instant::now() + after);
        } else {
            let delay = match effects.latency_ms {
                Some((ms, jitter)) => {
                    let spread = if jitter > 0 {
                        self.rng.gen_range(-jitter..=jitter)
                    } else {
                        0
                    };
                    Duration::from_millis((ms + spread).max(0).unsigned_abs())
                }
                None => Duration::ZERO,
            };
            queue.push_back((Bytes::copy_from_slice(data), Instant::now() + delay));
        }
    }

    /// Writes one chunk through bandwidth, slicer and limit_data. Ok(false): the limit was
    /// reached and the connection must close.
    async fn write(
        &mut self,
        chunk: Bytes,
        active: &[Kind],
        debt: &mut Duration,
    ) -> std::io::Result<bool> {
        let mut data = chunk;
        let mut close_after = false;
        for kind in active {
            if let Kind::LimitData { bytes } = kind {
                let left = (*bytes - self.written).max(0);
                if left == 0 {
                    return Ok(false);
                }
                if data.len() as i64 >= left {
                    data = data.slice(..usize::try_from(left).unwrap_or(data.len()));
                    close_after = true;
                }
            }
        }
        if let Some(rate) = active.iter().find_map(|k| match k {
            Kind::Bandwidth { rate_kb_s } => Some(*rate_kb_s),
            _ => None,
        }) {
            if rate > 0 {
                // rate KB/s = rate bytes per ms.
                *debt += Duration::from_micros(data.len() as u64 * 1000 / rate.unsigned_abs());
                let started = Instant::now();
                tokio::time::sleep(*debt).await;
                *debt = debt.saturating_sub(started.elapsed());
            }
        }
        let slicer = active.iter().find_map(|k| match k {
            Kind::Slicer {
                average_size,
                size_variation,
                delay_us,
            } => Some((*average_size, *size_variation, *delay_us)),
            _ => None,
        });
        match slicer {
            Some((average, variation, delay_us)) if average > 0 => {
                while !data.is_empty() {
                    let spread = if variation > 0 {
                        self.rng.gen_range(-variation..=variation)
                    } else {
                        0
                    };
                    let size = usize::try_from((average + spread).max(1))
                        .unwrap_or(1)
                        .min(data.len());
                    let piece = data.split_to(size);
                    self.dst.write_all(&piece).await?;
                    self.written += piece.len() as i64;
                    if !data.is_empty() && delay_us > 0 {
                        tokio::time::sleep(Duration::from_micros(delay_us.unsigned_abs())).await;
                    }
                }
            }
            _ => {
                self.dst.write_all(&data).await?;
                self.written += data.len() as i64;
            }
        }
        Ok(!close_after)
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
