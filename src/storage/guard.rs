//! Keeping a sick database from taking the server down with it: a circuit
//! that answers "unavailable" at once after repeated failures instead of
//! making every request wait its full timeout, and the bookkeeping of
//! database work that outlived its timeout ("stuck"), so that a pool whose
//! connections hang inside a silent network path can be replaced by one
//! that opens new connections once the path heals.
//!
//! Why both: libpq has no client-side timeout for a query in flight. When a
//! partition (or a proxy that stops forwarding) swallows a connection's
//! traffic, its thread waits in `recv` for ever, and the pool counts that
//! connection as checked out for ever. `Db::run` stops waiting after
//! `database.query_timeout_ms` and answers 503; this module counts what it
//! abandoned and tells `Db` when to start a fresh pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Consecutive failures that open the circuit.
pub const OPEN_AFTER_FAILURES: u32 = 5;
/// How long the circuit stays open before one request may probe again.
pub const OPEN_FOR: Duration = Duration::from_secs(1);

/// The circuit: closed (requests go to the database), open (they are
/// refused at once), half-open (one probe goes; its outcome decides).
#[derive(Debug)]
pub struct Circuit {
    epoch: Instant,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the circuit is open; 0: closed.
    open_until_ms: AtomicU64,
    probing: AtomicBool,
}

impl Default for Circuit {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }
}

impl Circuit {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a request may go to the database now. While open, no; once
    /// the open time has passed, exactly one request (the probe) may.
    pub fn admit(&self) -> bool {
        let open_until = self.open_until_ms.load(Ordering::Acquire);
        if open_until == 0 {
            return true;
        }
        if self.now_ms() < open_until {
            return false;
        }
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The database answered: the circuit closes.
    pub fn succeeded(&self) {
        self.failures.store(0, Ordering::Release);
        self.open_until_ms.store(0, Ordering::Release);
        self.probing.store(false, Ordering::Release);
    }

    /// The database could not be reached or did not answer in time. Returns
    /// whether this failure opened the circuit.
    pub fn failed(&self) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let was_probe = self.probing.swap(false, Ordering::AcqRel);
        if failures >= OPEN_AFTER_FAILURES || was_probe {
            let until = self.now_ms() + u64::try_from(OPEN_FOR.as_millis()).unwrap_or(1000);
            let previous = self.open_until_ms.swap(until.max(1), Ordering::AcqRel);
            return previous == 0;
        }
        false
    }

    pub fn is_open(&self) -> bool {
        self.open_until_ms.load(Ordering::Acquire) != 0
    }
}

/// Work a request stopped waiting for. Whichever of "the work finished"
/// and "the caller gave up" happens first decides; the work counts as stuck
/// from the moment the caller gave up until it finishes, if ever.
#[derive(Debug, Default)]
pub struct Stuck {
    count: AtomicU32,
}

/// One piece of work's side of that race.
#[derive(Debug, Clone)]
pub struct Ticket {
    settled: Arc<AtomicBool>,
    stuck: Arc<Stuck>,
}

impl Stuck {
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        Ticket {
            settled: Arc::new(AtomicBool::new(false)),
            stuck: self.clone(),
        }
    }

    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }
}

impl Ticket {
    /// The caller gave up waiting: the work is stuck until it finishes.
    pub fn abandon(&self) {
        if !self.settled.swap(true, Ordering::AcqRel) {
            self.stuck.count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The work finished (on its blocking thread), late or not.
    pub fn finish(&self) {
        if self.settled.swap(true, Ordering::AcqRel) {
            // Abandoned earlier: it is no longer stuck.
            self.stuck.count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_circuit_opens_after_repeated_failures_and_one_probe_closes_it() {
        let circuit = Circuit::default();
        for _ in 1..OPEN_AFTER_FAILURES {
            assert!(!circuit.failed());
            assert!(circuit.admit(), "still closed");
        }
        assert!(circuit.failed(), "the fifth failure opens it");
        assert!(!circuit.admit(), "open: refused at once");
        std::thread::sleep(OPEN_FOR + Duration::from_millis(20));
        assert!(circuit.admit(), "one probe after the open time");
        assert!(!circuit.admit(), "and only one");
        circuit.succeeded();
        assert!(circuit.admit() && circuit.admit(), "closed again");
        assert!(!circuit.is_open());
    }

    #[test]
    fn a_failed_probe_opens_the_circuit_again() {
        let circuit = Circuit::default();
        for _ in 0..OPEN_AFTER_FAILURES {
            circuit.failed();
        }
        std::thread::sleep(OPEN_FOR + Duration::from_millis(20));
        assert!(circuit.admit());
        circuit.failed();
        assert!(!circuit.admit(), "open again after the probe failed");
    }

    #[test]
    fn abandoned_work_is_stuck_until_it_finishes() {
        let stuck = Arc::new(Stuck::default());
        let on_time = stuck.ticket();
        on_time.finish();
        on_time.abandon();
        assert_eq!(stuck.count(), 0, "finished first: never stuck");
        let late = stuck.ticket();
        late.abandon();
        late.abandon();
        assert_eq!(stuck.count(), 1);
        late.finish();
        assert_eq!(stuck.count(), 0);
    }
}
