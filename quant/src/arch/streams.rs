//! The order in which a decode gemv walks its rows: several distant parts of
//! the matrix at once ("streams"), not one row after the other.
//!
//! A one-token matrix product reads each weight byte once, so its speed is
//! the memory bandwidth one thread gets. On the Zen 3 VM this project is
//! measured on, one sequential stream of 4 KiB pages gets far less than
//! several streams read side by side: a C loop summing a page-cached
//! 138 MiB file (median of 9 passes, 2 runs) got 8–10 GB/s as one stream
//! and 13–16 GB/s as four streams interleaved every 64–512 bytes, each with
//! a software prefetch 512 bytes ahead (2 threads: 11–15 → 17–23 GB/s).
//! Interleaving every 2 KiB or more lost most of the gain, and 8 or 16
//! streams were no better than 4. So a gemv takes a group of a few rows
//! (at most about 1 KiB of weights) from each of [`STREAMS`] equal parts
//! of its rows in turn; each output is still computed by the same code, so
//! results do not depend on the order.
//!
//! With two threads, each on its own rows, two streams per thread beat four
//! in that C loop (512-byte turns, 3 runs: 19.0–21.6 against 15.4–17.6
//! GB/s), but not in ember's decode: telling the gemvs the thread count so
//! that each read two (tg64 -t 2, 3 alternated rounds) took Q4_1 from
//! 159–167 to 133–155 t/s and Gemma 3 from 66–75 to 60–70, with Q4_0 and
//! Q8_0 unchanged. So every gemv reads four, whatever the thread count.

/// Parts of a gemv's rows read side by side (see the module docs).
pub(crate) const STREAMS: usize = 4;

/// Groups of rows of a gemv over `rows` rows, `group` rows each, in stream
/// order: the full groups are cut into [`STREAMS`] (or fewer) equal parts
/// and yielded one group from each part in turn; the full groups the parts
/// leave over follow in order, then the last `rows % group` rows as one
/// short group. Yields `(first row, rows in the group)`, every row exactly
/// once.
#[derive(Clone, Debug)]
pub(crate) struct RowStreams {
    group: usize,
    /// Full groups per part.
    per: usize,
    /// Parts read side by side.
    parts: usize,
    /// Next group in stream order (`0..per * parts`), then the left-over groups.
    next: usize,
    /// Full groups.
    groups: usize,
    rows: usize,
}

impl RowStreams {
    /// The groups of `rows` rows of `group` rows each (`group` ≥ 1).
    #[inline]
    pub(crate) fn new(rows: usize, group: usize) -> RowStreams {
        let group = group.max(1);
        let groups = rows / group;
        let parts = STREAMS.min(groups).max(1);
        RowStreams { group, per: groups / parts, parts, next: 0, groups, rows }
    }
}

/// The rows of a gemv that takes `R` rows per pass, one from each stream in
/// turn ([`RowStreams`] with groups of one row), a pass at a time: `(rows,
/// n)` with the first `n` slots (1 to `R`) filled in stream order and the
/// others repeating the last filled row; only the last pass can be short.
#[inline]
pub(crate) fn row_passes<const R: usize>(rows: usize) -> RowPasses<R> {
    RowPasses { order: RowStreams::new(rows, 1) }
}

/// The iterator of [`row_passes`]: a named type whose `next` is marked
/// `#[inline(always)]` (plain `#[inline]` was not enough), because a gemv
/// calls it once per pass (a `from_fn` closure was left out of line: 4% of
/// a Gemma 3 decode step in `perf`).
pub(crate) struct RowPasses<const R: usize> {
    order: RowStreams,
}

impl<const R: usize> Iterator for RowPasses<R> {
    type Item = ([usize; R], usize);

    #[inline(always)]
    fn next(&mut self) -> Option<([usize; R], usize)> {
        let mut pass = [self.order.next()?.0; R];
        let mut n = 1;
        while n < R {
            let Some((r, _)) = self.order.next() else { break };
            pass[n] = r;
            n += 1;
        }
        for k in n..R {
            pass[k] = pass[n - 1];
        }
        Some((pass, n))
    }
}

/// A gemv over the `out.len()` rows of `per_row` blocks in `w`, in the
/// passes of [`row_passes`]: each full pass of `R` rows through `full`, the
/// rows of a short last pass one at a time through `one`; each output is
/// stored at its row; rows of no blocks (`per_row == 0`) are all 0.0
/// without a kernel call. Marked `#[inline(always)]`, like the iterator, so
/// that the kernels (closures inside the caller's `#[target_feature]`
/// function, which share its features) inline into the loop.
#[inline(always)]
pub(crate) fn stream_passes<'w, T, const R: usize>(
    w: &'w [T],
    per_row: usize,
    out: &mut [f32],
    full: impl Fn([&'w [T]; R]) -> [f32; R],
    one: impl Fn([&'w [T]; 1]) -> [f32; 1],
) {
    if per_row == 0 {
        out.fill(0.0);
        return;
    }
    for (pass, n) in row_passes::<R>(out.len()) {
        if n == R {
            for (&r, x) in pass.iter().zip(full(pass_rows(w, per_row, &pass))) {
                out[r] = x;
            }
        } else {
            for &r in &pass[..n] {
                out[r] = one([&w[r * per_row..(r + 1) * per_row]])[0];
            }
        }
    }
}

/// The rows `pass` names (a pass of [`row_passes`]) of a matrix stored row
/// after row, `per_row` blocks each. A plain loop, not `pass.map(..)`:
/// `array::map` and its closure were left out of line in the gemvs (a call
/// per pass). Panics if a row lies past the end of `w`.
#[inline(always)]
pub(crate) fn pass_rows<'w, T, const R: usize>(w: &'w [T], per_row: usize, pass: &[usize; R]) -> [&'w [T]; R] {
    let mut rows: [&[T]; R] = [&[]; R];
    for (x, &r) in rows.iter_mut().zip(pass) {
        *x = &w[r * per_row..(r + 1) * per_row];
    }
    rows
}

impl Iterator for RowStreams {
    type Item = (usize, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, usize)> {
        let n = self.next;
        let interleaved = self.per * self.parts;
        let g = if n < interleaved {
            // The usual case divides by the constant (a shift), not `parts` (a `div`).
            let (q, r) =
                if self.parts == STREAMS { (n / STREAMS, n % STREAMS) } else { (n / self.parts, n % self.parts) };
            r * self.per + q
        } else if n < self.groups {
            n
        } else if n == self.groups && !self.rows.is_multiple_of(self.group) {
            self.next += 1;
            return Some((self.groups * self.group, self.rows % self.group));
        } else {
            return None;
        };
        self.next += 1;
        Some((g * self.group, self.group))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn row_passes_take_the_stream_order_r_at_a_time() {
        for rows in 0..40 {
            let order: std::vec::Vec<usize> = RowStreams::new(rows, 1).map(|g| g.0).collect();
            let passes: std::vec::Vec<([usize; 4], usize)> = row_passes::<4>(rows).collect();
            let flat: std::vec::Vec<usize> = passes.iter().flat_map(|(p, n)| p[..*n].iter().copied()).collect();
            assert_eq!(flat, order, "rows {rows}");
            for (i, (p, n)) in passes.iter().enumerate() {
                assert!(*n >= 1 && (*n == 4 || i + 1 == passes.len()), "rows {rows}: only the last pass is short");
                assert!(p[*n..].iter().all(|&r| r == p[n - 1]), "rows {rows}: unfilled slots repeat the last row");
            }
        }
    }

    #[test]
    fn every_row_once_in_stream_order() {
        for rows in 0..200 {
            for group in 1..10 {
                let got: std::vec::Vec<(usize, usize)> = RowStreams::new(rows, group).collect();
                let mut seen = std::vec![false; rows];
                for &(start, len) in &got {
                    assert!(
                        len >= 1 && len <= group && start + len <= rows,
                        "rows {rows} group {group}: {start}+{len}"
                    );
                    assert!(len == group || start + len == rows, "only the last group is short");
                    for (r, s) in seen.iter_mut().enumerate().skip(start).take(len) {
                        assert!(!*s, "row {r} twice");
                        *s = true;
                    }
                }
                assert!(seen.iter().all(|&s| s), "rows {rows} group {group}: a row left out");
                // The first groups come from STREAMS distant parts in turn.
                let groups = rows / group;
                if groups >= STREAMS {
                    let per = groups / STREAMS;
                    let firsts: std::vec::Vec<usize> = got[..STREAMS].iter().map(|g| g.0).collect();
                    let want: std::vec::Vec<usize> = (0..STREAMS).map(|k| k * per * group).collect();
                    assert_eq!(firsts, want, "rows {rows} group {group}");
                }
            }
        }
    }
}
