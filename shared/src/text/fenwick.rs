//! A Fenwick (binary indexed) tree of leaf weights: prefix sums and "which leaf holds
//! position p" in O(log n) (Fenwick, *A new data structure for cumulative frequency tables*,
//! 1994).

/// Prefix sums over a fixed-length array of `u32` weights (wrapping arithmetic inside; every
/// prefix sum of the represented array is a true, non-negative count).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fenwick {
    /// 1-based implicit tree; `tree[0]` unused.
    tree: Vec<u32>,
}

impl Fenwick {
    /// Builds the tree over `weights` in O(n).
    pub(crate) fn build(weights: impl Iterator<Item = u32>) -> Self {
        let mut tree = vec![0u32];
        tree.extend(weights);
        let n = tree.len() - 1;
        for i in 1..=n {
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                tree[parent] = tree[parent].wrapping_add(tree[i]);
            }
        }
        Fenwick { tree }
    }

    /// Adds `delta` (which may be negative) to weight `i`.
    pub(crate) fn add(&mut self, i: usize, delta: i64) {
        let d = delta as u32;
        let mut i = i + 1;
        while i < self.tree.len() {
            self.tree[i] = self.tree[i].wrapping_add(d);
            i += i & i.wrapping_neg();
        }
    }

    /// The sum of weights `0..i`.
    pub(crate) fn prefix(&self, i: usize) -> u32 {
        let mut sum = 0u32;
        let mut i = i;
        while i > 0 {
            sum = sum.wrapping_add(self.tree[i]);
            i &= i - 1;
        }
        sum
    }

    /// The leaf holding position `p` (`p` < total): the smallest `i` with
    /// `prefix(i + 1) > p`, and `prefix(i)`.
    pub(crate) fn find(&self, p: u32) -> (usize, u32) {
        let n = self.tree.len() - 1;
        let mut pos = 0usize;
        let mut rem = p;
        let mut step = if n == 0 {
            0
        } else {
            1usize << (usize::BITS - 1 - n.leading_zeros())
        };
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] <= rem {
                pos = next;
                rem -= self.tree[next];
            }
            step >>= 1;
        }
        (pos, p - rem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_find_agree_with_a_plain_scan() {
        let weights = [3u32, 0, 5, 1, 0, 0, 7, 2, 4];
        let mut f = Fenwick::build(weights.iter().copied());
        let mut w = weights.to_vec();
        f.add(4, 6);
        w[4] += 6;
        f.add(2, -5);
        w[2] -= 5;
        let total: u32 = w.iter().sum();
        for i in 0..=w.len() {
            assert_eq!(f.prefix(i), w[..i].iter().sum::<u32>());
        }
        for p in 0..total {
            let (i, base) = f.find(p);
            assert_eq!(base, w[..i].iter().sum::<u32>());
            assert!(base <= p && p < base + w[i], "p={p} i={i}");
        }
    }
}
