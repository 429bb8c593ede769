//! Helpers shared by several test files (each test binary gets its own statics).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Clones of [`Tracked`] values made so far in this test binary.
pub static CLONES: AtomicUsize = AtomicUsize::new(0);
/// Drops of [`Tracked`] values so far in this test binary.
pub static VALUE_DROPS: AtomicUsize = AtomicUsize::new(0);

/// A value that counts its clones and drops.
pub struct Tracked(pub u64);

impl Clone for Tracked {
    fn clone(&self) -> Self {
        CLONES.fetch_add(1, Ordering::SeqCst);
        Tracked(self.0)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        VALUE_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}
