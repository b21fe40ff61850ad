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
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
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
    /// When the current probe was let through: a probe whose request
    /// vanished (its client hung up, a readiness check timed out) is
    /// replaced after [`PROBE_DEADLINE`], so the circuit cannot stay open.
    probe_since_ms: AtomicU64,
}

/// How long one probe may take before another request may probe instead.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(10);

impl Default for Circuit {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            probe_since_ms: AtomicU64::new(0),
        }
    }
}

impl Circuit {
    /// Milliseconds since this circuit was made: a monotonic clock for the
    /// circuit and the pool's own bookkeeping.
    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a request may go to the database now. While open, no; once
    /// the open time has passed, exactly one request (the probe) may.
    pub fn admit(&self) -> bool {
        let open_until = self.open_until_ms.load(Ordering::Acquire);
        if open_until == 0 {
            return true;
        }
        let now = self.uptime_ms();
        if now < open_until {
            return false;
        }
        let deadline = u64::try_from(PROBE_DEADLINE.as_millis()).unwrap_or(10_000);
        let claimed = self
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            || self.probe_since_ms.load(Ordering::Acquire) + deadline <= now;
        if claimed {
            self.probe_since_ms.store(now, Ordering::Release);
        }
        claimed
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
            let until = self.uptime_ms() + u64::try_from(OPEN_FOR.as_millis()).unwrap_or(1000);
            let previous = self.open_until_ms.swap(until.max(1), Ordering::AcqRel);
            return previous == 0;
        }
        false
    }

    #[cfg(test)]
    fn is_open(&self) -> bool {
        self.open_until_ms.load(Ordering::Acquire) != 0
    }
}

/// Work a request stopped waiting for. The work's thread and the waiting
/// request race: whichever moves first decides. Work the caller gave up on
/// before it began is never run (its caller already answered 503, so a
/// code exchange or a rotation committed behind its back would turn the
/// honest retry into "reuse"); work given up on while it runs, or while its
/// thread waits for or tests a connection, counts as stuck until it ends.
#[derive(Debug, Default)]
pub struct Stuck {
    count: AtomicU32,
}

const WAITING: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const GIVEN_UP: u8 = 3;
const GIVEN_UP_RUNNING: u8 = 4;

/// One piece of work's side of that race.
#[derive(Debug, Clone)]
pub struct Ticket {
    state: Arc<AtomicU8>,
    stuck: Arc<Stuck>,
}

impl Stuck {
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        Ticket {
            state: Arc::new(AtomicU8::new(WAITING)),
            stuck: self.clone(),
        }
    }

    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }
}

impl Ticket {
    /// The work's thread holds a connection and is about to run the work:
    /// `false` when the caller gave up meanwhile (then the work must not
    /// run).
    pub fn start(&self) -> bool {
        self.state
            .compare_exchange(WAITING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The caller gave up waiting. Whether the work had begun or its thread
    /// was still getting (or testing) a connection, it counts as stuck until
    /// its thread ends.
    pub fn abandon(&self) {
        let given_up = self
            .state
            .compare_exchange(WAITING, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            || self
                .state
                .compare_exchange(
                    RUNNING,
                    GIVEN_UP_RUNNING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok();
        if given_up {
            self.stuck.count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Whether the caller gave up (the thread then reports nothing).
    pub fn is_abandoned(&self) -> bool {
        matches!(
            self.state.load(Ordering::Acquire),
            GIVEN_UP | GIVEN_UP_RUNNING
        )
    }

    /// The work's thread ended, late or not.
    pub fn finish(&self) {
        let before = self.state.swap(DONE, Ordering::AcqRel);
        if matches!(before, GIVEN_UP | GIVEN_UP_RUNNING) {
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
    fn abandoned_work_is_stuck_until_its_thread_ends_and_never_starts_late() {
        let stuck = Arc::new(Stuck::default());
        let on_time = stuck.ticket();
        assert!(on_time.start());
        on_time.finish();
        on_time.abandon();
        assert_eq!(stuck.count(), 0, "finished first: never stuck");

        let running = stuck.ticket();
        assert!(running.start());
        running.abandon();
        running.abandon();
        assert_eq!(stuck.count(), 1, "given up while it ran");
        running.finish();
        assert_eq!(stuck.count(), 0);

        let queued = stuck.ticket();
        queued.abandon();
        assert_eq!(stuck.count(), 1, "its thread may be testing a connection");
        assert!(queued.is_abandoned());
        assert!(
            !queued.start(),
            "work given up on before it began never runs"
        );
        queued.finish();
        assert_eq!(stuck.count(), 0);
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced_after_its_deadline() {
        // A circuit that has been up for a minute, so "ten seconds ago" exists.
        let circuit = Circuit {
            epoch: Instant::now()
                .checked_sub(Duration::from_secs(60))
                .expect("the clock is past a minute"),
            ..Circuit::default()
        };
        for _ in 0..OPEN_AFTER_FAILURES {
            circuit.failed();
        }
        std::thread::sleep(OPEN_FOR + Duration::from_millis(20));
        assert!(circuit.admit(), "the probe");
        assert!(!circuit.admit());
        // Its request vanished: the deadline passes.
        let since = circuit.probe_since_ms.load(Ordering::Acquire);
        circuit
            .probe_since_ms
            .store(since - PROBE_DEADLINE.as_millis() as u64, Ordering::Release);
        assert!(circuit.admit(), "another request may probe");
    }
}
