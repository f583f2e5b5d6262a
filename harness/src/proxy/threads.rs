//! The threads that carry proxied connections. Each is a current-thread runtime of its own,
//! and each connection lives on one of them, in turn: its reads, writes and wake-ups stay
//! on one thread, as an event-loop proxy's do (HAProxy binds a connection to a thread).
//! On the process's shared multi-thread runtime, a woken connection is often handed to
//! another worker, and each hand-off is a futex wake and a context switch (`bench-proxy`:
//! 0.87× HAProxy there, 0.99–1.05× here over seven runs). Listeners and the API stay on the shared runtime.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

/// One handle per link thread, and the next to be given a connection.
struct LinkThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

static LINK_THREADS: OnceLock<Option<LinkThreads>> = OnceLock::new();

/// How many link threads: one per core the process may use.
pub(crate) fn thread_count() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
}

/// Starts the link threads on first use. None when a thread or runtime cannot be made;
/// connections then run on the caller's runtime, as they would without this pool.
fn link_threads() -> Option<&'static LinkThreads> {
    LINK_THREADS
        .get_or_init(|| {
            let mut handles = Vec::new();
            for i in 0..thread_count() {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                handles.push(runtime.handle().clone());
                std::thread::Builder::new()
                    .name(format!("proxy-links-{i}"))
                    .spawn(move || runtime.block_on(std::future::pending::<()>()))
                    .ok()?;
            }
            Some(LinkThreads {
                handles,
                next: AtomicUsize::new(0),
            })
        })
        .as_ref()
}

/// Runs one connection's future on the next link thread. Its sockets must be made inside
/// the future (`TcpStream::from_std`), so that they register with that thread's driver.
pub(crate) fn spawn_link<F>(link: F) -> AbortHandle
where
    F: Future<Output = ()> + Send + 'static,
{
    match link_threads() {
        Some(threads) => {
            let i = threads.next.fetch_add(1, Ordering::Relaxed) % threads.handles.len();
            threads.handles[i].spawn(link).abort_handle()
        }
        None => tokio::spawn(link).abort_handle(),
    }
}
