//! A Fenwick (binary indexed) tree of leaf weights: prefix sums and "which leaf holds
//! position p" in O(log n) (Fenwick, *A new data structure for cumulative frequency tables*,
//! 1994). Each weight is a pair — visible chars and visible UTF-16 code units — kept in one
//! tree so a lookup or an update walks the tree once for both.

/// Prefix sums over an array of `[chars, units]` weights (wrapping arithmetic inside; every
/// prefix sum of the represented array is a true, non-negative count).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fenwick {
    /// 1-based implicit tree; `tree[0]` unused.
    tree: Vec<[u32; 2]>,
}

impl Fenwick {
    /// Builds the tree over `weights` in O(n).
    pub(crate) fn build(weights: impl Iterator<Item = [u32; 2]>) -> Self {
        let mut f = Fenwick { tree: Vec::new() };
        f.rebuild(weights);
        f
    }

    /// Rebuilds the tree over `weights` in O(n), reusing its allocation.
    pub(crate) fn rebuild(&mut self, weights: impl Iterator<Item = [u32; 2]>) {
        self.tree.clear();
        self.tree.push([0, 0]);
        self.tree.extend(weights);
        let n = self.tree.len() - 1;
        for i in 1..=n {
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                let [c, u] = self.tree[i];
                let p = &mut self.tree[parent];
                p[0] = p[0].wrapping_add(c);
                p[1] = p[1].wrapping_add(u);
            }
        }
    }

    /// Appends weight `w` after the last one, in O(log n).
    pub(crate) fn push(&mut self, w: [u32; 2]) {
        let n = self.tree.len(); // the new 1-based index
        let lo = n - (n & n.wrapping_neg());
        let (a, b) = (self.prefix(n - 1), self.prefix(lo));
        self.tree.push([
            w[0].wrapping_add(a[0].wrapping_sub(b[0])),
            w[1].wrapping_add(a[1].wrapping_sub(b[1])),
        ]);
    }

    /// Adds `chars` and `units` (either may be negative) to weight `i`.
    pub(crate) fn add(&mut self, i: usize, chars: i64, units: i64) {
        let (dc, du) = (chars as u32, units as u32);
        let mut i = i + 1;
        while i < self.tree.len() {
            let t = &mut self.tree[i];
            t[0] = t[0].wrapping_add(dc);
            t[1] = t[1].wrapping_add(du);
            i += i & i.wrapping_neg();
        }
    }

    /// The sums of weights `0..i`: `[chars, units]`.
    pub(crate) fn prefix(&self, i: usize) -> [u32; 2] {
        let mut sum = [0u32, 0];
        let mut i = i;
        while i > 0 {
            sum[0] = sum[0].wrapping_add(self.tree[i][0]);
            sum[1] = sum[1].wrapping_add(self.tree[i][1]);
            i &= i - 1;
        }
        sum
    }

    /// The sum of all weights.
    pub(crate) fn total(&self) -> [u32; 2] {
        self.prefix(self.tree.len() - 1)
    }

    /// The leaf holding position `p` of component `k` (0: chars, 1: units; `p` < total): the
    /// smallest `i` with `prefix(i + 1)[k] > p`, and `prefix(i)` (both components).
    pub(crate) fn find(&self, k: usize, p: u32) -> (usize, [u32; 2]) {
        let n = self.tree.len() - 1;
        let mut pos = 0usize;
        let mut base = [0u32, 0];
        let mut step = if n == 0 {
            0
        } else {
            1usize << (usize::BITS - 1 - n.leading_zeros())
        };
        while step > 0 {
            let next = pos + step;
            if next <= n && base[k].wrapping_add(self.tree[next][k]) <= p {
                pos = next;
                base[0] = base[0].wrapping_add(self.tree[next][0]);
                base[1] = base[1].wrapping_add(self.tree[next][1]);
            }
            step >>= 1;
        }
        (pos, base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_find_agree_with_a_plain_scan() {
        let weights = [3u32, 0, 5, 1, 0, 0, 7, 2, 4];
        let pairs = |w: &[u32]| w.iter().map(|&c| [c, 2 * c + 1]).collect::<Vec<_>>();
        let mut f = Fenwick::build(pairs(&weights).into_iter());
        let mut w = weights.to_vec();
        f.add(4, 6, 12);
        w[4] += 6;
        f.add(2, -5, -10);
        w[2] -= 5;
        let ws = pairs(&w);
        let sum = |ws: &[[u32; 2]]| ws.iter().fold([0, 0], |[a, b], [c, u]| [a + c, b + u]);
        assert_eq!(f.total(), sum(&ws));
        for i in 0..=w.len() {
            assert_eq!(f.prefix(i), sum(&ws[..i]));
        }
        for k in 0..2 {
            for p in 0..f.total()[k] {
                let (i, base) = f.find(k, p);
                assert_eq!(base, sum(&ws[..i]));
                assert!(base[k] <= p && p < base[k] + ws[i][k], "k={k} p={p} i={i}");
            }
        }
        f.rebuild(pairs(&weights).into_iter());
        assert_eq!(f.total(), sum(&pairs(&weights)));
        let mut pushed = Fenwick::build(std::iter::empty());
        for (i, &w) in pairs(&weights).iter().enumerate() {
            pushed.push(w);
            for j in 0..=i + 1 {
                assert_eq!(
                    pushed.prefix(j),
                    sum(&pairs(&weights)[..j]),
                    "push {i}, prefix {j}"
                );
            }
        }
    }
}
