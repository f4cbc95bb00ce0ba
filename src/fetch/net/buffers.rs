//! Connection buffers sized to the exchange, small while a connection
//! waits and grown only for what needs more.

use ureq::unversioned::transport::Buffers;

use super::framing::{Fault, Framing};

/// Input buffer of a new connection: a usual response head, and a small
/// body with it, in one read.
pub const INPUT_START: usize = 2 * 1024;
/// Input buffer once a read has filled it: a body streaming in, read in
/// chunks of this size.
pub const INPUT_BODY: usize = 8 * 1024;
/// Output buffer of a new connection: a usual request head in one write
/// (ureq writes a head row by row, and the buffer grows to the longest row
/// of the request being sent).
pub const OUTPUT_START: usize = 1024;
/// Largest response head accepted (the contract's 64 KiB).
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest input buffer: one step past [`MAX_HEAD`], so that ureq sees a
/// head longer than the limit and reports it as such.
const INPUT_MAX: usize = MAX_HEAD + 4 * 1024;
/// Largest output buffer, and so the longest row of a request head.
pub const OUTPUT_MAX: usize = 64 * 1024;

/// Buffers sized to the exchange: [`INPUT_START`] in and [`OUTPUT_START`]
/// out, allocated on first use. The input grows to [`INPUT_BODY`] once a
/// read fills it (a body streaming in), and beyond (doubling, up to one step
/// past [`MAX_HEAD`]) only while a response head does not fit, shrinking
/// back to [`INPUT_BODY`] once it is consumed; the output grows to the
/// longest row of the request being sent (see [`begin`]), up to
/// [`OUTPUT_MAX`].
///
/// Small to start with, because a connection waiting for its answer holds
/// them: at a thousand slow requests in flight, 8 KiB in and 4 KiB out cost
/// 12 MiB, most of it never written to.
#[derive(Debug, Default)]
pub struct ConnBuffers {
    input: Vec<u8>,
    filled: usize,
    consumed: usize,
    output: Vec<u8>,
    progress: bool,
    /// Room offered by the last `input_append_buf`.
    offered: usize,
    /// The last read filled all the room offered.
    read_full: bool,
    /// Every byte received passes through it before ureq sees it.
    framing: Framing,
    /// What the framing found wrong, for the transport to report.
    fault: Option<Fault>,
}

impl ConnBuffers {
    fn ensure_output(&mut self) {
        let need = super::exchange::output_need().clamp(OUTPUT_START, OUTPUT_MAX);
        if self.output.len() < need {
            self.output.resize(need, 0);
        }
    }

    /// Makes room to append input: moves unconsumed bytes to the front, and
    /// grows the buffer when it is full of them.
    fn make_room(&mut self) {
        if self.consumed == self.filled {
            self.consumed = 0;
            self.filled = 0;
            if self.input.len() > INPUT_BODY {
                self.input.truncate(INPUT_BODY);
                self.input.shrink_to_fit();
            }
        } else if self.consumed > 0 && self.filled > self.input.len() / 2 {
            self.input.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
        }
        if self.input.len() < INPUT_START {
            self.input.resize(INPUT_START, 0);
        } else if self.filled == self.input.len() && self.input.len() < INPUT_MAX {
            let grown = (self.input.len() * 2).min(INPUT_MAX);
            self.input.resize(grown, 0);
        } else if self.read_full && self.input.len() < INPUT_BODY {
            self.input.resize(INPUT_BODY, 0);
        }
        self.offered = self.input.len() - self.filled;
    }

    /// Notes the first `amount` bytes of the output going out (a request
    /// line tells the framing what answers it).
    pub fn sending(&mut self, amount: usize) {
        self.framing
            .sent(&self.output[..amount.min(self.output.len())]);
    }

    /// What the framing of the input found wrong, once.
    pub fn take_fault(&mut self) -> Option<Fault> {
        self.fault.take()
    }

    /// The fault of the connection ending now, if its end cuts a response
    /// where ureq cannot tell.
    pub fn fault_at_close(&self) -> Option<Fault> {
        self.framing.at_close()
    }

    /// Bytes allocated (for tests and measurements).
    #[cfg(test)]
    fn allocated(&self) -> (usize, usize) {
        (self.input.len(), self.output.len())
    }
}

impl Buffers for ConnBuffers {
    fn output(&mut self) -> &mut [u8] {
        self.ensure_output();
        &mut self.output
    }

    fn input(&self) -> &[u8] {
        &self.input[self.consumed..self.filled]
    }

    fn input_append_buf(&mut self) -> &mut [u8] {
        self.make_room();
        &mut self.input[self.filled..]
    }

    fn input_appended(&mut self, amount: usize) {
        self.read_full = amount > 0 && amount == self.offered;
        let end = self.filled + amount;
        assert!(end <= self.input.len(), "appended past the buffer");
        if amount == 0 {
            return;
        }
        // The pending bytes are never consumed by ureq; the bound only
        // keeps a broken promise from reaching before the input.
        let start = self.filled - self.framing.pending().min(self.filled - self.consumed);
        match self.framing.frame(&mut self.input[start..end]) {
            Ok(kept) => self.filled = start + kept,
            Err(fault) => {
                self.filled = start;
                self.fault = Some(fault);
            }
        }
    }

    fn input_consume(&mut self, amount: usize) {
        self.progress = amount > 0;
        self.consumed += amount;
        assert!(self.consumed <= self.filled, "consumed past the input");
    }

    fn tmp_and_output(&mut self) -> (&mut [u8], &mut [u8]) {
        // Scratch space for a request body, taken from the free input.
        self.make_room();
        self.ensure_output();
        (&mut self.input[self.filled..], &mut self.output)
    }

    fn can_use_input(&self) -> bool {
        self.consumed < self.filled && self.progress
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::net::exchange::begin;

    #[test]
    fn input_grows_for_a_long_head_and_shrinks_after() {
        let mut b = ConnBuffers::default();
        assert_eq!(b.allocated(), (0, 0));
        let mut total = 0;
        // A head that never ends: the buffer grows to its limit, no further.
        loop {
            let room = b.input_append_buf().len();
            if room == 0 {
                break;
            }
            b.input_appended(room);
            total += room;
            b.input_consume(0);
        }
        assert_eq!(total, INPUT_MAX);
        assert!(total > MAX_HEAD);
        b.input_consume(total);
        assert!(b.input().is_empty());
        b.input_append_buf();
        assert_eq!(b.allocated().0, INPUT_BODY);
    }

    #[test]
    fn input_starts_small_and_grows_for_a_streaming_body() {
        let mut b = ConnBuffers::default();
        // A short answer, consumed: the buffer stays small.
        assert_eq!(b.input_append_buf().len(), INPUT_START);
        b.input_appended(300);
        b.input_consume(300);
        assert_eq!(b.input_append_buf().len(), INPUT_START);
        // A read that fills the room: more is coming, in larger reads.
        b.input_appended(INPUT_START);
        b.input_consume(INPUT_START);
        assert_eq!(b.input_append_buf().len(), INPUT_BODY);
        b.input_appended(10);
        b.input_consume(10);
        assert_eq!(b.allocated().0, INPUT_BODY);
    }

    #[test]
    fn output_fits_the_longest_row() {
        let mut b = ConnBuffers::default();
        begin(0);
        assert_eq!(b.output().len(), OUTPUT_START);
        begin(20_000);
        assert_eq!(b.output().len(), 20_000);
        begin(1_000_000);
        assert_eq!(b.output().len(), OUTPUT_MAX);
    }
}
