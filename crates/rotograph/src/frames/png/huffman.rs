//! Length-limited Huffman code lengths (package-merge) and canonical deflate codes.
//!
//! Package-merge (Larmore & Hirschberg 1990) gives the optimal code lengths under a maximum
//! length; the alphabets here have at most 286 symbols, so its O(n·L) lists are tiny.

/// One entry of a package-merge level: a leaf (a symbol) or a package of two consecutive items
/// of the level below.
#[derive(Clone, Copy)]
struct Item {
    weight: u64,
    /// `Some(k)`: leaf number `k` (index into the sorted leaves); `None`: a package.
    leaf: Option<u32>,
    /// For a package, the first of its two items in the level below.
    first: u32,
}

/// Optimal prefix-code lengths for `freqs` with no length above `max_bits`; symbols with
/// frequency 0 get length 0. The code is always complete (Kraft sum exactly 1): a lone used
/// symbol gets length 1 and the next symbol (a lower one when it is the last) length 1 beside
/// it, since zlib rejects an incomplete code-length code.
///
/// # Panics
/// When more symbols are used than `max_bits` can address (`2^max_bits`): the callers' alphabets
/// (286 with 12 bits, 19 with 7) never are.
pub(super) fn limited_lengths(freqs: &[u32], max_bits: u32) -> Vec<u8> {
    let mut lens = vec![0u8; freqs.len()];
    let mut leaves: Vec<(u64, usize)> = freqs
        .iter()
        .enumerate()
        .filter(|&(_, &f)| f > 0)
        .map(|(s, &f)| (u64::from(f), s))
        .collect();
    // By weight, then symbol: deterministic.
    leaves.sort_unstable();
    let n = leaves.len();
    match n {
        0 => return lens,
        1 => {
            let s = leaves[0].1;
            lens[s] = 1;
            if freqs.len() > 1 {
                lens[if s + 1 < freqs.len() { s + 1 } else { s - 1 }] = 1;
            }
            return lens;
        }
        _ => {}
    }
    assert!(
        max_bits < 32 && n <= 1 << max_bits,
        "{n} symbols do not fit {max_bits}-bit codes"
    );
    let leaf_items: Vec<Item> = leaves
        .iter()
        .enumerate()
        .map(|(k, &(weight, _))| Item {
            weight,
            leaf: Some(k as u32),
            first: 0,
        })
        .collect();
    // Level 0 holds the leaves at the deepest length; each level above merges the leaves with
    // the packages (pairs) of the level below.
    let mut levels: Vec<Vec<Item>> = vec![leaf_items.clone()];
    for _ in 1..max_bits {
        let below = &levels[levels.len() - 1];
        let mut merged = Vec::with_capacity(n + below.len() / 2);
        let mut packages = below.chunks_exact(2).enumerate().map(|(k, pair)| Item {
            weight: pair[0].weight + pair[1].weight,
            leaf: None,
            first: 2 * k as u32,
        });
        let mut leaves_iter = leaf_items.iter().copied().peekable();
        let mut next_package = packages.next();
        loop {
            match (leaves_iter.peek(), next_package) {
                (Some(l), Some(p)) if l.weight <= p.weight => {
                    merged.push(*l);
                    leaves_iter.next();
                }
                (_, Some(p)) => {
                    merged.push(p);
                    next_package = packages.next();
                }
                (Some(l), None) => {
                    merged.push(*l);
                    leaves_iter.next();
                }
                (None, None) => break,
            }
        }
        levels.push(merged);
    }
    // The cheapest 2n - 2 items of the top level; every leaf inside them, at any depth, adds one
    // bit to its symbol's length.
    let top = levels.len() - 1;
    let mut stack: Vec<(usize, u32)> = (0..2 * n as u32 - 2).map(|i| (top, i)).collect();
    while let Some((level, i)) = stack.pop() {
        let item = levels[level][i as usize];
        match item.leaf {
            Some(k) => lens[leaves[k as usize].1] += 1,
            None => {
                stack.push((level - 1, item.first));
                stack.push((level - 1, item.first + 1));
            }
        }
    }
    lens
}

/// Canonical deflate codes (RFC 1951, 3.2.2) for `lens`, bit-reversed so that they can be
/// written least significant bit first. Symbols of length 0 get code 0.
pub(super) fn canonical_codes(lens: &[u8]) -> Vec<u16> {
    let mut count = [0u16; 16];
    for &l in lens {
        count[usize::from(l)] += 1;
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for bits in 1..16 {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    lens.iter()
        .map(|&l| {
            if l == 0 {
                return 0;
            }
            let c = next[usize::from(l)];
            next[usize::from(l)] += 1;
            c.reverse_bits() >> (16 - u32::from(l))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// Kraft sum scaled by 2^max: `2^max` exactly for a complete code.
    fn kraft(lens: &[u8], max: u32) -> u64 {
        lens.iter()
            .filter(|&&l| l > 0)
            .map(|&l| 1u64 << (max - u32::from(l)))
            .sum()
    }

    /// Total cost of plain (unlimited) Huffman coding, by repeated merging.
    fn huffman_cost(freqs: &[u32]) -> u64 {
        let mut heap: BinaryHeap<Reverse<u64>> = freqs
            .iter()
            .filter(|&&f| f > 0)
            .map(|&f| Reverse(u64::from(f)))
            .collect();
        let mut cost = 0;
        while heap.len() > 1 {
            let a = heap.pop().unwrap().0;
            let b = heap.pop().unwrap().0;
            cost += a + b;
            heap.push(Reverse(a + b));
        }
        cost
    }

    fn cost(freqs: &[u32], lens: &[u8]) -> u64 {
        freqs
            .iter()
            .zip(lens)
            .map(|(&f, &l)| u64::from(f) * u64::from(l))
            .sum()
    }

    #[test]
    fn fibonacci_counts_stay_within_the_limit_and_complete() {
        // Fibonacci weights make plain Huffman a chain as deep as the alphabet.
        let mut fib = vec![1u32, 1];
        while fib.len() < 40 {
            let k = fib.len();
            fib.push(fib[k - 1] + fib[k - 2]);
        }
        for max in [7, 12, 15] {
            let lens = limited_lengths(&fib, max);
            assert!(
                lens.iter().all(|&l| l >= 1 && u32::from(l) <= max),
                "{lens:?}"
            );
            assert_eq!(kraft(&lens, max), 1 << max, "complete code for max {max}");
            assert_eq!(*lens.iter().max().unwrap() as u32, max, "the limit binds");
            // More frequent symbols never get longer codes.
            assert!(lens.windows(2).all(|p| p[0] >= p[1]), "{lens:?}");
        }
    }

    #[test]
    fn unconstrained_lengths_are_optimal() {
        // Pseudo-random histograms whose Huffman tree is shallow: package-merge must reach
        // plain Huffman's cost exactly.
        let mut state = 0x1234_5678_9abc_def0u64;
        for round in 0..50 {
            let n = 2 + round * 5;
            let freqs: Vec<u32> = (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % 1000) as u32 + 1
                })
                .collect();
            let lens = limited_lengths(&freqs, 15);
            assert!(*lens.iter().max().unwrap() <= 15);
            assert_eq!(kraft(&lens, 15), 1 << 15);
            assert_eq!(cost(&freqs, &lens), huffman_cost(&freqs), "n = {n}");
        }
    }

    #[test]
    fn unused_symbols_and_tiny_alphabets() {
        let lens = limited_lengths(&[0, 5, 0, 0], 7);
        assert_eq!(lens, [0, 1, 1, 0], "a lone symbol gets a partner");
        let lens = limited_lengths(&[0, 0, 3], 7);
        assert_eq!(lens, [0, 1, 1]);
        assert_eq!(limited_lengths(&[0, 0], 7), [0, 0]);
        let lens = limited_lengths(&[0, 9, 0, 1, 0, 1], 7);
        assert_eq!(lens, [0, 1, 0, 2, 0, 2]);
    }

    #[test]
    fn canonical_codes_follow_rfc1951() {
        // The example of RFC 1951, 3.2.2: lengths (3, 3, 3, 3, 3, 2, 4, 4) give codes
        // 010, 011, 100, 101, 110, 00, 1110, 1111.
        let lens = [3, 3, 3, 3, 3, 2, 4, 4];
        let want = [0b010, 0b011, 0b100, 0b101, 0b110, 0b00, 0b1110, 0b1111u16];
        let codes = canonical_codes(&lens);
        for ((&c, &w), &l) in codes.iter().zip(&want).zip(&lens) {
            assert_eq!(c.reverse_bits() >> (16 - l), w);
        }
    }
}
