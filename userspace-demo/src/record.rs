// SPDX-License-Identifier: GPL-2.0
//! The one format a forked child reports in to its parent over a pipe: a
//! fixed number of u64 words, little-endian, sent in one write (under
//! PIPE_BUF, so atomic) from a stack buffer: no allocation on either side.

use std::fs::File;

use crate::counter::Counter;
use crate::error::Result;
use crate::procfs::cowstat::Counts;
use crate::workload::{recv, send};

/// The longest record, in words.
pub const MAX_WORDS: usize = 24;

/// A value that travels as `N` words.
pub trait Record<const N: usize>: Sized {
    /// The words, in wire order.
    fn to_words(&self) -> [u64; N];
    /// Rebuilds the value from [`Record::to_words`]'s output.
    fn from_words(w: [u64; N]) -> Self;
}

/// Sends `r` as one write.
pub fn send_record<const N: usize>(f: &mut File, r: &impl Record<N>) -> Result<()> {
    const { assert!(N <= MAX_WORDS, "record longer than MAX_WORDS") };
    let mut b = [0u8; MAX_WORDS * 8];
    for (chunk, w) in b.chunks_exact_mut(8).zip(r.to_words()) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    send(f, &b[..N * 8])
}

/// Receives one record (EOF before it is whole means the child died).
pub fn recv_record<const N: usize, R: Record<N>>(f: &mut File) -> Result<R> {
    const { assert!(N <= MAX_WORDS, "record longer than MAX_WORDS") };
    let mut b = [0u8; MAX_WORDS * 8];
    recv(f, &mut b[..N * 8])?;
    let mut w = [0u64; N];
    for (x, chunk) in w.iter_mut().zip(b.chunks_exact(8)) {
        let mut a = [0u8; 8];
        a.copy_from_slice(chunk);
        *x = u64::from_le_bytes(a);
    }
    Ok(R::from_words(w))
}

/// Plain numbers.
impl<const N: usize> Record<N> for [u64; N] {
    fn to_words(&self) -> [u64; N] {
        *self
    }

    fn from_words(w: [u64; N]) -> Self {
        w
    }
}

/// A `procs` row's counters, in column order.
impl Record<5> for Counts {
    fn to_words(&self) -> [u64; 5] {
        Counter::PROCS.map(|c| self.get(c).unwrap_or(0))
    }

    fn from_words(w: [u64; 5]) -> Self {
        Counts::from_columns(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::pipe;

    #[test]
    fn records_cross_a_pipe() {
        let (mut rx, mut tx) = pipe().unwrap();
        let c = Counts::from_columns([1, 2, 3, 4, 5]);
        send_record(&mut tx, &c).unwrap();
        send_record(&mut tx, &[7u64, u64::MAX]).unwrap();
        assert_eq!(recv_record::<5, Counts>(&mut rx).unwrap(), c);
        assert_eq!(recv_record::<2, [u64; 2]>(&mut rx).unwrap(), [7, u64::MAX]);
        send_record(&mut tx, &[1u64]).unwrap();
        drop(tx);
        assert!(recv_record::<2, [u64; 2]>(&mut rx).is_err());
    }
}
