//! The precise timer wait. mio rounds a poll timeout up to whole milliseconds, so on Linux
//! the loop arms a `timerfd` (through rustix's safe API) for the next timer deadline and
//! registers it with its poll: `epoll_wait` then returns at the deadline, to the
//! nanosecond the kernel's high-resolution timers give, with no spinning. Elsewhere, or if
//! the timerfd cannot be made, the loop sleeps the whole milliseconds and spins (bounded)
//! for the rest (`Nexus::wait`).

use std::io;
use std::time::Instant;

use mio::{Registry, Token};

/// A timerfd registered with the loop's poll (Linux), armed for one deadline at a time.
#[cfg(target_os = "linux")]
pub(crate) struct DeadlineTimer {
    fd: rustix::fd::OwnedFd,
    /// The deadline it is armed for (re-arming for the same one is skipped).
    armed: Option<Instant>,
}

#[cfg(target_os = "linux")]
impl DeadlineTimer {
    /// A timerfd on the monotonic clock (`Instant`'s), registered under `token`; `None`
    /// if the OS refuses.
    pub(crate) fn new(registry: &Registry, token: Token) -> Option<Self> {
        use rustix::fd::AsRawFd;
        use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .ok()?;
        let raw = fd.as_raw_fd();
        registry
            .register(
                &mut mio::unix::SourceFd(&raw),
                token,
                mio::Interest::READABLE,
            )
            .ok()?;
        Some(Self { fd, armed: None })
    }

    /// Arms it to fire at `deadline` (a relative time from now; at least 1 ns, since 0
    /// would disarm it), unless it is armed for that deadline already.
    pub(crate) fn arm(&mut self, deadline: Instant) -> io::Result<()> {
        use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
        if self.armed == Some(deadline) {
            return Ok(());
        }
        let after = deadline.saturating_duration_since(Instant::now());
        let secs = i64::try_from(after.as_secs()).unwrap_or(i64::MAX);
        let nanos = if secs == 0 {
            i64::from(after.subsec_nanos()).max(1)
        } else {
            i64::from(after.subsec_nanos())
        };
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: secs,
                tv_nsec: nanos as _,
            },
        };
        timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec).map_err(io::Error::from)?;
        self.armed = Some(deadline);
        Ok(())
    }

    /// Its readiness was reported: reads the expiration count (clearing it).
    pub(crate) fn fired(&mut self) {
        let mut count = [0u8; 8];
        // WouldBlock (a stale readiness) is fine; it is armed again when needed.
        let _ = rustix::io::read(&self.fd, &mut count);
        self.armed = None;
    }
}

/// No timerfd outside Linux: the loop's bounded final spin does the precise part.
#[cfg(not(target_os = "linux"))]
pub(crate) struct DeadlineTimer;

#[cfg(not(target_os = "linux"))]
impl DeadlineTimer {
    pub(crate) fn new(_registry: &Registry, _token: Token) -> Option<Self> {
        None
    }

    pub(crate) fn arm(&mut self, _deadline: Instant) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(crate) fn fired(&mut self) {}
}

impl std::fmt::Debug for DeadlineTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeadlineTimer")
    }
}
