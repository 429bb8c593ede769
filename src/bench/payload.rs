//! The event carried by the throughput and latency scenarios: a `u64` (`--payload 8`) or
//! a byte array of a supported size, moved by value through both ventus and crossbeam.

/// A payload: built from a sequence number, which it gives back (the runs check sums of
/// these).
pub(crate) trait Payload: Clone + Send + Sync + 'static {
    /// The payload for sequence number `seq`.
    fn new(seq: u64) -> Self;
    /// The sequence number it was built from.
    fn seq(&self) -> u64;
}

impl Payload for u64 {
    fn new(seq: u64) -> Self {
        seq
    }
    fn seq(&self) -> u64 {
        *self
    }
}

/// `N` bytes by value; the first eight hold the sequence number.
#[derive(Clone, Debug)]
pub(crate) struct Bytes<const N: usize>([u8; N]);

impl<const N: usize> Payload for Bytes<N> {
    fn new(seq: u64) -> Self {
        let mut bytes = [0u8; N];
        bytes[..8].copy_from_slice(&seq.to_le_bytes());
        Bytes(bytes)
    }
    fn seq(&self) -> u64 {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(head)
    }
}

/// The `--payload` sizes the scenarios are compiled for.
pub(crate) const SIZES: [usize; 5] = [8, 64, 256, 1024, 4096];

/// Calls `$run::<P>($args)` with the payload type of `$bytes` bytes (one of [`SIZES`]).
macro_rules! with_payload {
    ($bytes:expr, $run:ident($($arg:expr),* $(,)?)) => {
        match $bytes {
            64 => $run::<$crate::bench::payload::Bytes<64>>($($arg),*),
            256 => $run::<$crate::bench::payload::Bytes<256>>($($arg),*),
            1024 => $run::<$crate::bench::payload::Bytes<1024>>($($arg),*),
            4096 => $run::<$crate::bench::payload::Bytes<4096>>($($arg),*),
            _ => $run::<u64>($($arg),*),
        }
    };
}
pub(crate) use with_payload;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_sequence_number() {
        assert_eq!(<u64 as Payload>::new(7).seq(), 7);
        let big = <Bytes<256> as Payload>::new(u64::MAX - 3);
        assert_eq!(big.seq(), u64::MAX - 3);
        assert_eq!(std::mem::size_of::<Bytes<1024>>(), 1024);
    }
}
