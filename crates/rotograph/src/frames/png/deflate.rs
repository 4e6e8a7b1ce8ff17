//! The deflate side of the PNG encoder (RFC 1951): filtered rows become literals and runs of
//! equal bytes (matches at distance 1), coded with one dynamic Huffman block whose code comes
//! from a histogram of sampled rows.

use super::huffman::{canonical_codes, limited_lengths};

/// Longest literal/length code. Two literals share one table entry of 24 code bits
/// ([`Code::pair`]), and four literals plus the at most 7 bits left after a flush fit the
/// 64-bit accumulator.
pub(super) const LITLEN_MAX_BITS: u32 = 12;
/// Literal/length alphabet size sent (0-255 literals, 256 end of block, 257-285 lengths).
const LITLEN_SYMBOLS: usize = 286;
/// End-of-block symbol.
const END_OF_BLOCK: usize = 256;
/// Longest deflate match.
const MAX_MATCH: usize = 258;
/// Shortest deflate match.
const MIN_MATCH: usize = 3;

/// Base match length of each length symbol 257-285 (RFC 1951, 3.2.5).
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
/// Extra bits of each length symbol 257-285.
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Order in which the code-length code lengths are sent (RFC 1951, 3.2.7).
const CL_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Length symbol index (0-28, i.e. symbol 257 + index) of a match length 3-258.
fn length_index(len: usize) -> usize {
    debug_assert!((MIN_MATCH..=MAX_MATCH).contains(&len));
    if len == MAX_MATCH {
        return 28;
    }
    // Largest base not above `len`; 258 has its own symbol, so stop at 27.
    LENGTH_BASE[..28].partition_point(|&b| usize::from(b) <= len) - 1
}

/// Splits a run of `len` (at least [`MIN_MATCH`]) bytes into matches of 3-258 bytes, none
/// shorter than 3, and calls `f` with each length.
#[inline]
fn match_pieces(mut len: usize, mut f: impl FnMut(usize)) {
    debug_assert!(len >= MIN_MATCH);
    while len > MAX_MATCH {
        let piece = if len - MAX_MATCH >= MIN_MATCH {
            MAX_MATCH
        } else {
            len - MIN_MATCH
        };
        f(piece);
        len -= piece;
    }
    f(len);
}

/// Receives the tokens of a filtered row: literal bytes and runs (distance-1 matches).
pub(super) trait Tokens {
    /// Eight literal bytes, as a little-endian word.
    fn word(&mut self, v: u64);
    /// Literal bytes, in order.
    fn literals(&mut self, bytes: &[u8]);
    /// A run of `len` (at least 8) bytes equal to the byte before them.
    fn run(&mut self, len: usize);
}

/// Reads 8 bytes at `i` as a little-endian word.
#[inline(always)]
pub(super) fn word(buf: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[i..i + 8]);
    u64::from_le_bytes(w)
}

/// Tokenizes `buf[1..end]`, where `buf[0]` is the byte before it in the stream (set it to differ
/// from `buf[1]` when there is none), 8 bytes at a time: a word whose bytes all repeat the byte
/// before it starts a run, extended to its last repeating byte; other words are literals. So
/// every run of 15 or more repeating bytes is coded as matches, shorter ones when a step lands
/// in them, and the literal path costs one extra compare a word.
#[inline(always)]
pub(super) fn tokenize<T: Tokens>(buf: &[u8], end: usize, sink: &mut T) {
    let mut i = 1;
    while i + 8 <= end {
        let v = word(buf, i);
        if v != word(buf, i - 1) {
            sink.word(v);
            i += 8;
            continue;
        }
        let mut stop = i + 8;
        while stop + 8 <= end && word(buf, stop) == word(buf, stop - 1) {
            stop += 8;
        }
        while stop < end && buf[stop] == buf[stop - 1] {
            stop += 1;
        }
        sink.run(stop - i);
        i = stop;
    }
    sink.literals(&buf[i..end]);
}

/// Symbol counts of sampled rows.
pub(super) struct Histogram {
    /// Literal counts, in four interleaved tables (repeated bytes do not wait on one counter).
    lit: [[u32; 256]; 4],
    /// Length symbol counts (257-285).
    lengths: [u32; 29],
    /// Bytes tokenized.
    pub(super) bytes: u64,
}

impl Histogram {
    /// An empty histogram.
    pub(super) fn new() -> Self {
        Histogram {
            lit: [[0; 256]; 4],
            lengths: [0; 29],
            bytes: 0,
        }
    }

    /// Counts of the literal/length alphabet (end of block once).
    pub(super) fn counts(&self) -> [u32; LITLEN_SYMBOLS] {
        let mut c = [0u32; LITLEN_SYMBOLS];
        for (b, slot) in c[..256].iter_mut().enumerate() {
            *slot = self.lit.iter().map(|t| t[b]).sum();
        }
        c[END_OF_BLOCK] = 1;
        c[257..].copy_from_slice(&self.lengths);
        c
    }
}

impl Tokens for Histogram {
    #[inline(always)]
    fn word(&mut self, v: u64) {
        self.bytes += 8;
        for k in 0..4 {
            self.lit[k][(v >> (8 * k)) as u8 as usize] += 1;
            self.lit[k][(v >> (8 * k + 32)) as u8 as usize] += 1;
        }
    }

    #[inline(always)]
    fn literals(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        let mut quads = bytes.chunks_exact(4);
        for q in &mut quads {
            self.lit[0][usize::from(q[0])] += 1;
            self.lit[1][usize::from(q[1])] += 1;
            self.lit[2][usize::from(q[2])] += 1;
            self.lit[3][usize::from(q[3])] += 1;
        }
        for &b in quads.remainder() {
            self.lit[0][usize::from(b)] += 1;
        }
    }

    fn run(&mut self, len: usize) {
        self.bytes += len as u64;
        match_pieces(len, |piece| self.lengths[length_index(piece)] += 1);
    }
}

/// The block's code: literal/length and distance code lengths and the encoding tables.
pub(super) struct Code {
    /// Literal/length code lengths (286).
    lens: Vec<u8>,
    /// Distance code lengths: distance codes 0 (distance 1, the only one used) and 1, one bit
    /// each, so that the distance code is complete.
    dist_lens: [u8; 2],
}

impl Code {
    /// The code for `hist`: every symbol gets a code (the histogram is a sample), lengths
    /// limited to [`LITLEN_MAX_BITS`].
    pub(super) fn new(hist: &Histogram) -> Self {
        let counts = hist.counts().map(|c| c.saturating_add(1));
        Code {
            lens: limited_lengths(&counts, LITLEN_MAX_BITS),
            dist_lens: [1, 1],
        }
    }

    /// Estimated size in bits of coding data with `hist`'s statistics, scaled by `scale`
    /// (whole image over sample), including the block header.
    pub(super) fn estimate_bits(&self, hist: &Histogram, scale: f64) -> f64 {
        let counts = hist.counts();
        let mut bits = 0u64;
        for (s, &c) in counts.iter().enumerate() {
            let mut per = u64::from(self.lens[s]);
            if s > END_OF_BLOCK {
                per += u64::from(LENGTH_EXTRA[s - 257]) + u64::from(self.dist_lens[0]);
            }
            bits += u64::from(c) * per;
        }
        bits as f64 * scale + self.header_bits() as f64
    }

    /// The code-length sequence (literal/length then distance lengths) as code-length symbols:
    /// `(symbol, extra bits value, extra bit count)`.
    fn length_tokens(&self) -> Vec<(u8, u8, u8)> {
        let all: Vec<u8> = self.lens.iter().chain(&self.dist_lens).copied().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < all.len() {
            let v = all[i];
            let mut n = 1;
            while i + n < all.len() && all[i + n] == v {
                n += 1;
            }
            i += n;
            if v == 0 {
                while n >= 11 {
                    let k = n.min(138);
                    tokens.push((18, (k - 11) as u8, 7));
                    n -= k;
                }
                if n >= 3 {
                    tokens.push((17, (n - 3) as u8, 3));
                    n = 0;
                }
                tokens.extend(std::iter::repeat_n((0, 0, 0), n));
            } else {
                tokens.push((v, 0, 0));
                n -= 1;
                while n >= 3 {
                    let k = n.min(6);
                    tokens.push((16, (k - 3) as u8, 2));
                    n -= k;
                }
                tokens.extend(std::iter::repeat_n((v, 0, 0), n));
            }
        }
        tokens
    }

    /// The code-length code for `tokens`: lengths (19) and codes.
    fn cl_code(tokens: &[(u8, u8, u8)]) -> (Vec<u8>, Vec<u16>) {
        let mut counts = [0u32; 19];
        for &(s, _, _) in tokens {
            counts[usize::from(s)] += 1;
        }
        let lens = limited_lengths(&counts, 7);
        let codes = canonical_codes(&lens);
        (lens, codes)
    }

    /// Number of code-length code lengths sent (trailing zeros in [`CL_ORDER`] dropped, at
    /// least 4).
    fn hclen(cl_lens: &[u8]) -> usize {
        let used = CL_ORDER
            .iter()
            .rposition(|&s| cl_lens[s] != 0)
            .map_or(0, |p| p + 1);
        used.max(4)
    }

    /// Size of the block header in bits (block type, counts, code-length code, code lengths).
    fn header_bits(&self) -> u64 {
        let tokens = self.length_tokens();
        let (cl_lens, _) = Self::cl_code(&tokens);
        let body: u64 = tokens
            .iter()
            .map(|&(s, _, n)| u64::from(cl_lens[usize::from(s)]) + u64::from(n))
            .sum();
        3 + 5 + 5 + 4 + 3 * Self::hclen(&cl_lens) as u64 + body
    }

    /// Writes the header of the final dynamic block.
    pub(super) fn write_header(&self, w: &mut BitWriter) {
        let tokens = self.length_tokens();
        let (cl_lens, cl_codes) = Self::cl_code(&tokens);
        let hclen = Self::hclen(&cl_lens);
        w.reserve(64 + tokens.len() * 2);
        // BFINAL = 1, BTYPE = 2 (dynamic Huffman).
        w.put(0b101, 3);
        w.put((LITLEN_SYMBOLS - 257) as u64, 5);
        w.put((self.dist_lens.len() - 1) as u64, 5);
        w.put((hclen - 4) as u64, 4);
        w.flush();
        for &s in &CL_ORDER[..hclen] {
            w.put(u64::from(cl_lens[s]), 3);
            w.flush();
        }
        for (s, extra, n) in tokens {
            let s = usize::from(s);
            w.put(u64::from(cl_codes[s]), u32::from(cl_lens[s]));
            w.put(u64::from(extra), u32::from(n));
            w.flush();
        }
    }

    /// The encoding tables for this code.
    pub(super) fn tables(&self) -> Tables {
        let codes = canonical_codes(&self.lens);
        let dist_codes = canonical_codes(&self.dist_lens);
        let entry = |s: usize| u32::from(codes[s]) | u32::from(self.lens[s]) << 24;
        let mut lit = [0u32; 256];
        for (b, e) in lit.iter_mut().enumerate() {
            *e = entry(b);
        }
        let mut pair = vec![0u32; 1 << 16].into_boxed_slice();
        for (hi, row) in pair.chunks_exact_mut(256).enumerate() {
            let (code_hi, len_hi) = (lit[hi] & 0xFF_FFFF, lit[hi] >> 24);
            for (e, &lo) in row.iter_mut().zip(&lit) {
                let len_lo = lo >> 24;
                *e = ((lo & 0xFF_FFFF) | code_hi << len_lo) + ((len_lo + len_hi) << 24);
            }
        }
        let pair_len: Vec<u8> = pair.iter().map(|&e| (e >> 24) as u8).collect();
        let pair_len: Box<[u8; 1 << 16]> = pair_len
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| unreachable!());
        pair.iter_mut().for_each(|e| *e &= 0xFF_FFFF);
        let pair: Box<[u32; 1 << 16]> = pair.try_into().unwrap_or_else(|_| unreachable!());
        let mut run = [0u64; MAX_MATCH + 1];
        for (len, e) in run.iter_mut().enumerate().skip(MIN_MATCH) {
            let k = length_index(len);
            let (code, bits) = (u64::from(codes[257 + k]), u32::from(self.lens[257 + k]));
            let extra_bits = u32::from(LENGTH_EXTRA[k]);
            let extra = (len - usize::from(LENGTH_BASE[k])) as u64;
            let dist_bits = u32::from(self.dist_lens[0]);
            let all = code | extra << bits | u64::from(dist_codes[0]) << (bits + extra_bits);
            *e = all | u64::from(bits + extra_bits + dist_bits) << 56;
        }
        Tables {
            pair,
            pair_len,
            lit,
            run,
            end: (
                u64::from(codes[END_OF_BLOCK]),
                u32::from(self.lens[END_OF_BLOCK]),
            ),
        }
    }
}

/// Lookup tables of a [`Code`]: code bits least significant first; the single-literal and run
/// entries hold the bit count in their top byte.
pub(super) struct Tables {
    /// Two literals `lo | hi << 8` at once: their codes (24 bits at most)...
    pair: Box<[u32; 1 << 16]>,
    /// ...and their bit count (a separate table: no masking on the hot path).
    pair_len: Box<[u8; 1 << 16]>,
    /// One literal: code bits, count in bits 24-31.
    lit: [u32; 256],
    /// A match of length `len` at distance 1: length code, extra bits and distance code in
    /// the low 56 bits, count in bits 56-63.
    run: [u64; MAX_MATCH + 1],
    /// End of block: code and count.
    end: (u64, u32),
}

/// A little-endian bit writer over a growing byte buffer: a 64-bit accumulator, flushed a
/// whole word at a time (the buffer keeps 8 spare bytes past the write position).
pub(super) struct BitWriter {
    buf: Vec<u8>,
    pos: usize,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    /// Appends to `buf` (from its current length).
    pub(super) fn new(buf: Vec<u8>) -> Self {
        let pos = buf.len();
        BitWriter {
            buf,
            pos,
            acc: 0,
            bits: 0,
        }
    }

    /// Makes room for `bytes` more output bytes (plus the flush slack).
    #[inline]
    pub(super) fn reserve(&mut self, bytes: usize) {
        let need = self.pos + bytes + 16;
        if self.buf.len() < need {
            // In steps of 64 KiB; the capacity grows by doubling.
            self.buf.resize(need + (64 << 10), 0);
        }
    }

    /// Adds `n` bits (at most 56 minus the bits pending; call [`Self::flush`] in between).
    #[inline(always)]
    pub(super) fn put(&mut self, code: u64, n: u32) {
        self.acc |= code << self.bits;
        self.bits += n;
    }

    /// Writes the whole bytes of the accumulator; at most 7 bits stay pending.
    #[inline(always)]
    pub(super) fn flush(&mut self) {
        let (acc, bits, pos) = flush(&mut self.buf, self.pos, self.acc, self.bits);
        (self.acc, self.bits, self.pos) = (acc, bits, pos);
    }

    /// Pads to a byte and returns the buffer, cut to the bytes written.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.reserve(8);
        self.flush();
        if self.bits > 0 {
            self.pos += 1;
        }
        self.buf.truncate(self.pos);
        self.buf
    }
}

/// The flush step on plain values (kept in registers by the literal loop).
#[inline(always)]
fn flush(buf: &mut [u8], pos: usize, acc: u64, bits: u32) -> (u64, u32, usize) {
    buf[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
    let whole = bits / 8;
    (acc >> (whole * 8), bits & 7, pos + whole as usize)
}

/// Huffman-codes rows into a [`BitWriter`].
pub(super) struct Encoder<'t> {
    /// The output.
    pub(super) w: BitWriter,
    tables: &'t Tables,
}

impl<'t> Encoder<'t> {
    /// An encoder writing with `tables` after what `w` holds.
    pub(super) fn new(w: BitWriter, tables: &'t Tables) -> Self {
        Encoder { w, tables }
    }

    /// Codes the tokens of `buf[1..end]` (see [`tokenize`]).
    #[inline(always)]
    pub(super) fn row(&mut self, buf: &[u8], end: usize) {
        // Every token takes at most 12 bits a byte.
        self.w.reserve(end * 3 / 2 + 64);
        let w = &mut self.w;
        // The writer's state as plain locals, so that it stays in registers.
        let mut row = RowEncoder {
            out: &mut w.buf[..],
            pos: w.pos,
            acc: w.acc,
            bits: w.bits,
            tables: self.tables,
        };
        tokenize(buf, end, &mut row);
        (w.pos, w.acc, w.bits) = (row.pos, row.acc, row.bits);
    }

    /// Ends the block and returns the buffer.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.w.reserve(8);
        let (code, n) = self.tables.end;
        self.w.put(code, n);
        self.w.finish()
    }
}

/// The bit writer's state while one row is coded.
struct RowEncoder<'a> {
    out: &'a mut [u8],
    pos: usize,
    acc: u64,
    bits: u32,
    tables: &'a Tables,
}

impl RowEncoder<'_> {
    /// Adds a table entry: code bits below bit 24, count above.
    #[inline(always)]
    fn put(&mut self, e: u32) {
        self.acc |= u64::from(e & 0xFF_FFFF) << self.bits;
        self.bits += e >> 24;
    }

    #[inline(always)]
    fn flush(&mut self) {
        (self.acc, self.bits, self.pos) = flush(self.out, self.pos, self.acc, self.bits);
    }
}

impl Tokens for RowEncoder<'_> {
    #[inline(always)]
    fn word(&mut self, v: u64) {
        let (codes, lens) = (&*self.tables.pair, &*self.tables.pair_len);
        for half in [v as u32, (v >> 32) as u32] {
            let (lo, hi) = ((half & 0xFFFF) as usize, (half >> 16) as usize);
            self.acc |= u64::from(codes[lo]) << self.bits;
            self.bits += u32::from(lens[lo]);
            self.acc |= u64::from(codes[hi]) << self.bits;
            self.bits += u32::from(lens[hi]);
            self.flush();
        }
    }

    #[inline(always)]
    fn literals(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.put(self.tables.lit[usize::from(b)]);
            self.flush();
        }
    }

    #[inline(always)]
    fn run(&mut self, len: usize) {
        let run = &self.tables.run;
        match_pieces(len, |piece| {
            let e = run[piece];
            self.acc |= (e & ((1 << 56) - 1)) << self.bits;
            self.bits += (e >> 56) as u32;
            self.flush();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_symbols_match_rfc1951() {
        assert_eq!(length_index(3), 0);
        assert_eq!(length_index(10), 7);
        assert_eq!(length_index(11), 8);
        assert_eq!(length_index(12), 8);
        assert_eq!(length_index(13), 9);
        assert_eq!(length_index(227), 27);
        assert_eq!(length_index(257), 27);
        assert_eq!(length_index(258), 28);
        for len in MIN_MATCH..=MAX_MATCH {
            let k = length_index(len);
            let base = usize::from(LENGTH_BASE[k]);
            assert!(len >= base && len - base < 1 << LENGTH_EXTRA[k], "{len}");
        }
    }

    #[test]
    fn match_pieces_cover_runs_without_short_pieces() {
        for len in 3..2000 {
            let mut total = 0;
            match_pieces(len, |p| {
                assert!((MIN_MATCH..=MAX_MATCH).contains(&p), "{len}: {p}");
                total += p;
            });
            assert_eq!(total, len);
        }
    }

    /// Collects tokens as (literal bytes, run lengths) in order.
    #[derive(Default)]
    struct Collect(Vec<Result<u8, usize>>);
    impl Tokens for Collect {
        fn word(&mut self, v: u64) {
            self.literals(&v.to_le_bytes());
        }
        fn literals(&mut self, bytes: &[u8]) {
            self.0.extend(bytes.iter().map(|&b| Ok(b)));
        }
        fn run(&mut self, len: usize) {
            self.0.push(Err(len));
        }
    }

    #[test]
    fn tokenize_rebuilds_the_bytes() {
        // The byte before the row, then 3s (indices 2-17) and 40 zeros (20-59): runs start
        // at the 8-byte steps (9 and 25), the bytes before them are literals.
        let mut data = vec![7u8, 1];
        data.extend([3; 16]);
        data.extend([4, 5]);
        data.extend([0; 40]);
        data.extend([9, 9, 8]);
        let end = data.len();
        data.extend([0; 8]);
        let mut c = Collect::default();
        tokenize(&data, end, &mut c);
        let mut rebuilt = vec![data[0]];
        for t in &c.0 {
            match *t {
                Ok(b) => rebuilt.push(b),
                Err(n) => {
                    assert!(n >= 8);
                    let last = *rebuilt.last().unwrap();
                    rebuilt.extend(std::iter::repeat_n(last, n));
                }
            }
        }
        assert_eq!(rebuilt, data[..end]);
        let runs: Vec<usize> = c.0.iter().filter_map(|t| t.err()).collect();
        assert_eq!(runs, [9, 34], "runs found to their ends");
    }
}
