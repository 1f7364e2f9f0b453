//! Background threads that stop, and are waited for, when their handle is
//! dropped. A thread still inside libpq or OpenSSL while the process runs its
//! exit handlers can crash the exit, so shutdown waits for them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::Duration;

/// How long a drop waits for its thread to finish.
const JOIN_WAIT: Duration = Duration::from_secs(3);

/// What a worker checks to know it should stop.
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// Whether the owner asked the worker to stop.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sleeps up to `d`, waking early on a stop request. Returns false when
    /// the worker should stop.
    pub fn sleep(&self, d: Duration) -> bool {
        if !self.requested() {
            std::thread::park_timeout(d);
        }
        !self.requested()
    }
}

/// A running worker thread.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Thread,
    // Behind a Mutex only so that a `Worker` is `Sync` (AppState is shared).
    done: Mutex<mpsc::Receiver<()>>,
}

impl Worker {
    /// Starts `body` on a named thread.
    pub fn spawn(name: &str, body: impl FnOnce(&Stop) + Send + 'static) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let signal = Stop(stop.clone());
        let (tx, done) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                // `tx` is dropped when the body returns: that is the "done" signal.
                let _tx = tx;
                body(&signal);
            })?;
        Ok(Self {
            stop,
            thread: handle.thread().clone(),
            done: Mutex::new(done),
        })
    }

    /// Runs `f(n)` every `every` (n = 1, 2, …) until stopped.
    pub fn periodic(
        name: &str,
        every: Duration,
        mut f: impl FnMut(u32) + Send + 'static,
    ) -> std::io::Result<Self> {
        Self::spawn(name, move |stop| {
            let mut n: u32 = 0;
            while stop.sleep(every) {
                n = n.wrapping_add(1);
                f(n);
            }
        })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
        if let Ok(done) = self.done.lock() {
            let _ = done.recv_timeout(JOIN_WAIT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::time::Instant;

    #[test]
    fn dropping_a_worker_stops_it_promptly() {
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let worker = Worker::periodic("t", Duration::from_millis(10), move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        drop(worker);
        assert!(started.elapsed() < Duration::from_secs(1));
        let after = runs.load(Ordering::SeqCst);
        assert!(after > 0);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            runs.load(Ordering::SeqCst),
            after,
            "ran after being dropped"
        );
    }

    #[test]
    fn a_long_sleep_is_cut_short_by_drop() {
        let worker = Worker::periodic("t", Duration::from_secs(3600), |_| {}).unwrap();
        let started = Instant::now();
        drop(worker);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
