//! Matrix products with bf16 operands and f32 sums, on CPUs with AVX512-BF16 (`vdpbf16ps`: 32
//! products of bf16 pairs added into 16 f32 lanes per instruction, twice the f32 rate). The opt-in
//! `model.precision = "bf16"` runs the convolutions' products through it.
//!
//! Both operands are rounded to bf16 (8 bits of mantissa, round to nearest even) as they are
//! packed; the sums stay f32. The left operand is packed as [`PackedRows`] (each row's k-pairs,
//! a u32 per pair), the right as [`PackedPanels`] (panels of 16 columns, the two values of a
//! k-pair of one column side by side), which is the layout the instruction reads. A caller that
//! uses an operand more than once (a convolution's filters, for every image) packs it once; the
//! packers convert 16 values an instruction where the operand's rows are contiguous. The kernel
//! computes 6 rows x 32 columns of the result at a time.

/// Rows and columns of the result one kernel call computes.
const ROWS: usize = 6;
const PANEL: usize = 16;

/// Whether this CPU can run [`gemm_bf16`].
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// f32 -> bf16, rounding to nearest even (NaN stays NaN). The vector packers' instruction
/// (`vcvtneps2bf16`) gives the same for every normal value; it flushes subnormals to zero.
pub fn to_bf16(value: f32) -> u16 {
    let bits = value.to_bits();
    if value.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// bf16 -> f32 (exact).
pub fn from_bf16(value: u16) -> f32 {
    f32::from_bits((value as u32) << 16)
}

/// Two values as one k-pair: the first in the low half.
fn pair(low: f32, high: f32) -> u32 {
    to_bf16(low) as u32 | (to_bf16(high) as u32) << 16
}

/// A matrix read through strides: element (i, j) is `data[i * row_stride + j * column_stride]`.
#[derive(Clone, Copy)]
pub struct Strided<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub column_stride: usize,
}

impl Strided<'_> {
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.row_stride + j * self.column_stride]
    }

    /// Whether a `rows x columns` matrix read through these strides stays inside `data`.
    pub fn holds(&self, rows: usize, columns: usize) -> bool {
        rows == 0
            || columns == 0
            || (rows - 1) * self.row_stride + (columns - 1) * self.column_stride < self.data.len()
    }
}

/// The left operand (`m x k`) in bf16: row `i`'s k-pairs at `data[i * pairs..]`, k padded to
/// even with a zero. Reused across calls, it keeps its allocation.
#[derive(Default)]
pub struct PackedRows {
    rows: usize,
    pairs: usize,
    data: Vec<u32>,
}

impl PackedRows {
    /// Packs `a` (`rows x k`).
    pub fn pack(&mut self, rows: usize, k: usize, a: Strided) {
        assert!(a.holds(rows, k), "a holds {rows} x {k}");
        self.rows = rows;
        self.pairs = k.div_ceil(2);
        let pairs = self.pairs;
        self.data.resize(rows * pairs, 0);
        for (i, row) in self
            .data
            .chunks_exact_mut(pairs.max(1))
            .enumerate()
            .take(rows)
        {
            if a.column_stride == 1 {
                convert_pairs(&a.data[i * a.row_stride..][..k], row);
            } else {
                for (p, packed) in row.iter_mut().enumerate() {
                    let high = if 2 * p + 1 < k {
                        a.at(i, 2 * p + 1)
                    } else {
                        0.0
                    };
                    *packed = pair(a.at(i, 2 * p), high);
                }
            }
        }
    }

    /// The rows as bf16 values, for a caller that writes them itself (im2col straight into this
    /// layout): `rows` rows of `k` values, each `2 * pairs` long (the returned stride), with the
    /// pad after an odd `k` already zero.
    pub fn rows_mut(&mut self, rows: usize, k: usize) -> (&mut [u16], usize) {
        self.rows = rows;
        self.pairs = k.div_ceil(2);
        self.data.resize(rows * self.pairs, 0);
        let values: &mut [u16] = bytemuck::cast_slice_mut(&mut self.data);
        if k % 2 == 1 {
            values
                .iter_mut()
                .skip(k)
                .step_by(k + 1)
                .for_each(|pad| *pad = 0);
        }
        (values, 2 * self.pairs)
    }
}

/// The right operand (`k x n`) in bf16: for panel `q` (columns `16q..16q + 16`) and k-pair `p`,
/// the 16 columns' pairs at `data[(q * pairs + p) * 16..]`; columns past `n` are zero.
#[derive(Default)]
pub struct PackedPanels {
    columns: usize,
    pairs: usize,
    data: Vec<u32>,
    /// One column's pairs, when the columns are what is contiguous.
    column: Vec<u32>,
    /// The rows in bf16, when the rows are what is contiguous.
    rows: Vec<u16>,
}

impl PackedPanels {
    /// Packs `b` (`k x columns`).
    pub fn pack(&mut self, k: usize, columns: usize, b: Strided) {
        assert!(b.holds(k, columns), "b holds {k} x {columns}");
        self.columns = columns;
        self.pairs = k.div_ceil(2);
        let (pairs, panels) = (self.pairs, columns.div_ceil(PANEL));
        self.data.resize(panels * pairs * PANEL, 0);
        if b.column_stride == 1 && k > 0 {
            // Converted row by row, then interleaved as bf16 rows are.
            let mut rows = std::mem::take(&mut self.rows);
            rows.resize(k * columns, 0);
            for (r, row) in rows.chunks_exact_mut(columns).enumerate() {
                convert_to_bf16(&b.data[r * b.row_stride..][..columns], row);
            }
            self.pack_bf16(k, columns, &rows, columns);
            self.rows = rows;
        } else if b.row_stride == 1 && k > 0 {
            // Each column's k values are contiguous: convert them, then spread the pairs.
            self.column.resize(pairs, 0);
            for j in 0..columns {
                convert_pairs(&b.data[j * b.column_stride..][..k], &mut self.column);
                let (q, lane) = (j / PANEL, j % PANEL);
                let panel = &mut self.data[q * pairs * PANEL..][..pairs * PANEL];
                for (p, packed) in self.column.iter().enumerate() {
                    panel[p * PANEL + lane] = *packed;
                }
            }
            self.zero_missing_columns();
        } else {
            for (index, packed) in self.data.iter_mut().enumerate() {
                let (q, p, lane) = (
                    index / (pairs * PANEL),
                    index / PANEL % pairs,
                    index % PANEL,
                );
                let j = q * PANEL + lane;
                *packed = if j < columns {
                    let high = if 2 * p + 1 < k {
                        b.at(2 * p + 1, j)
                    } else {
                        0.0
                    };
                    pair(b.at(2 * p, j), high)
                } else {
                    0
                };
            }
        }
    }

    /// Packs `b` (`k x columns`), already bf16, row `r` at `b[r * row_stride..]`.
    pub fn pack_bf16(&mut self, k: usize, columns: usize, b: &[u16], row_stride: usize) {
        assert!(
            k == 0 || (k - 1) * row_stride + columns <= b.len(),
            "b holds {k} x {columns}"
        );
        self.columns = columns;
        self.pairs = k.div_ceil(2);
        let pairs = self.pairs;
        self.data.resize(columns.div_ceil(PANEL) * pairs * PANEL, 0);
        let row = |r: usize| &b[r * row_stride..][..columns];
        for p in 0..pairs {
            let high = (2 * p + 1 < k).then(|| row(2 * p + 1));
            interleave_bf16_rows(row(2 * p), high, pairs, &mut self.data[p * PANEL..]);
        }
    }

    fn zero_missing_columns(&mut self) {
        let (q, first) = (self.columns / PANEL, self.columns % PANEL);
        if first == 0 {
            return;
        }
        let panel = &mut self.data[q * self.pairs * PANEL..][..self.pairs * PANEL];
        for lanes in panel.chunks_exact_mut(PANEL) {
            lanes[first..].fill(0);
        }
    }
}

/// `values` (k of them) as k-pairs in `pairs` (`k.div_ceil(2)` of them), the last padded with 0:
/// the values in order, two to a u32, the first in its low half (x86-64's byte order, the only
/// one with the instructions).
fn convert_pairs(values: &[f32], pairs: &mut [u32]) {
    debug_assert_eq!(pairs.len(), values.len().div_ceil(2));
    let halves: &mut [u16] = bytemuck::cast_slice_mut(pairs);
    convert_to_bf16(values, &mut halves[..values.len()]);
    if values.len() % 2 == 1 {
        halves[values.len()] = 0;
    }
}

/// Pair rows `low` and `high` (zero where `None`) of every panel: for panel `q`, the pairs of
/// its 16 columns at `out[q * pairs * 16..][..16]`.
fn interleave_bf16_rows(low: &[u16], high: Option<&[u16]>, pairs: usize, out: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the CPU has the instructions; `out` holds every panel's 16 lanes of this pair.
        return unsafe { interleave_bf16_rows_avx512(low, high, pairs, out) };
    }
    interleave_bf16_rows_portable(low, high, pairs, out);
}

fn interleave_bf16_rows_portable(low: &[u16], high: Option<&[u16]>, pairs: usize, out: &mut [u32]) {
    for (j, &value) in low.iter().enumerate() {
        let above = high.map_or(0, |h| h[j]);
        out[j / PANEL * pairs * PANEL + j % PANEL] = value as u32 | (above as u32) << 16;
    }
    let columns = low.len();
    if !columns.is_multiple_of(PANEL) {
        out[columns / PANEL * pairs * PANEL..][columns % PANEL..PANEL].fill(0);
    }
}

/// # Safety
///
/// The CPU has AVX512F, AVX512BW and AVX512VL, `high` is as long as `low`, and `out` reaches
/// lane 16 of the last panel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn interleave_bf16_rows_avx512(
    low: &[u16],
    high: Option<&[u16]>,
    pairs: usize,
    out: &mut [u32],
) {
    use std::arch::x86_64::*;
    for (q, start) in (0..low.len()).step_by(PANEL).enumerate() {
        let mask = lanes_mask((low.len() - start).min(PANEL));
        assert!(
            out.len() >= q * pairs * PANEL + PANEL,
            "out holds panel {q}"
        );
        // SAFETY: the mask keeps the loads inside the rows; the store is inside `out` (above).
        unsafe {
            let below = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(
                mask,
                low.as_ptr().add(start).cast(),
            ));
            let above = match high {
                Some(h) => _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(
                    _mm256_maskz_loadu_epi16(mask, h.as_ptr().add(start).cast()),
                )),
                None => _mm512_setzero_si512(),
            };
            _mm512_storeu_si512(
                out.as_mut_ptr().add(q * pairs * PANEL).cast(),
                _mm512_or_si512(below, above),
            );
        }
    }
}

/// `values` rounded to bf16 into `out`, resized to as many: a buffer kept across calls.
pub fn convert_into(values: &[f32], out: &mut Vec<u16>) {
    out.resize(values.len(), 0);
    convert_to_bf16(values, out);
}

/// `values` rounded to bf16 into `out` (as long): 16 values an instruction (`vcvtneps2bf16`).
pub fn convert_to_bf16(values: &[f32], out: &mut [u16]) {
    assert_eq!(values.len(), out.len(), "one bf16 per value");
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the CPU has the instructions (checked just above); the lengths match.
        return unsafe { convert_to_bf16_avx512(values, out) };
    }
    for (o, &v) in out.iter_mut().zip(values) {
        *o = to_bf16(v);
    }
}

/// # Safety
///
/// The CPU has AVX512F, AVX512BW, AVX512VL and AVX512-BF16; `out` is as long as `values`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
unsafe fn convert_to_bf16_avx512(values: &[f32], out: &mut [u16]) {
    use std::arch::x86_64::*;
    for start in (0..values.len()).step_by(PANEL) {
        let mask = lanes_mask((values.len() - start).min(PANEL));
        // SAFETY: the mask keeps the load inside `values` and the store inside `out`.
        unsafe {
            let converted =
                _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, values.as_ptr().add(start)));
            _mm256_mask_storeu_epi16(
                out.as_mut_ptr().add(start).cast(),
                mask,
                std::mem::transmute::<__m256bh, __m256i>(converted),
            );
        }
    }
}

/// The first `count` (at most 16) lanes.
#[cfg(target_arch = "x86_64")]
pub(crate) fn lanes_mask(count: usize) -> u16 {
    if count >= PANEL {
        u16::MAX
    } else {
        (1u16 << count) - 1
    }
}

/// `c (m x n, row-major) = a (m x k) . b (k x n)`, plus `c`'s old values when `accumulate`, with
/// the operands rounded to bf16. Panics if the CPU lacks AVX512-BF16 (check [`available`]).
pub fn gemm_bf16(
    m: usize,
    n: usize,
    k: usize,
    a: Strided,
    b: Strided,
    c: &mut [f32],
    accumulate: bool,
) {
    let (mut left, mut right) = (PackedRows::default(), PackedPanels::default());
    left.pack(m, k, a);
    right.pack(k, n, b);
    gemm_bf16_packed(&left, &right, c, accumulate);
}

/// [`gemm_bf16`] on operands already packed: `c (rows x columns, row-major) = a . b`.
pub fn gemm_bf16_packed(a: &PackedRows, b: &PackedPanels, c: &mut [f32], accumulate: bool) {
    assert!(available(), "gemm_bf16 needs AVX512-BF16");
    assert_eq!(a.pairs, b.pairs, "a's k matches b's");
    let (m, n, pairs) = (a.rows, b.columns, a.pairs);
    assert!(c.len() >= m * n, "c holds {m} x {n}");
    if m == 0 || n == 0 {
        return;
    }
    let panels = n.div_ceil(PANEL);
    // Two panels of b (k x 32, 64 KB at k = 1,000) stay in cache while every row block of a
    // passes over them.
    for panel in (0..panels).step_by(2) {
        let width = (n - panel * PANEL).min(2 * PANEL);
        for row in (0..m).step_by(ROWS) {
            let rows = ROWS.min(m - row);
            // SAFETY: `available()` was checked above; the slices cover what the kernel reads.
            unsafe {
                kernel(
                    &a.data[row * pairs..],
                    pairs,
                    rows,
                    &b.data[panel * pairs * PANEL..],
                    width,
                    &mut c[row * n + panel * PANEL..],
                    n,
                    accumulate,
                );
            }
        }
    }
}

/// `R` rows by `width` (<= 32; more than 16 when `TWO`) columns of the result, in `R x 2`
/// accumulators of 16 lanes. `R` and `TWO` are constants so that the accumulators live in
/// registers through the loop.
///
/// # Safety
///
/// The CPU has AVX512F and AVX512-BF16 ([`available`]); `a` holds `R` rows of `pairs` values;
/// `b` holds one panel of `pairs * PANEL` values, two when `TWO`; `c` holds `R` rows of `ldc`
/// values with `width <= ldc` columns each to write.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize, const TWO: bool>(
    a: &[u32],
    pairs: usize,
    b: &[u32],
    width: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    debug_assert!(a.len() >= R * pairs, "a holds R rows of pairs");
    debug_assert!(
        b.len() >= pairs * PANEL * if TWO { 2 } else { 1 },
        "b holds its panels"
    );
    debug_assert!(width <= 2 * PANEL && (TWO || width <= PANEL));
    debug_assert!(c.len() >= (R - 1) * ldc + width, "c holds R rows of width");
    let mut sums = [[_mm512_setzero_ps(); 2]; R];
    let second = pairs * PANEL;
    for p in 0..pairs {
        // SAFETY: each panel holds `pairs * PANEL` u32s; the second is read only when `TWO`.
        let b0: __m512bh = unsafe {
            std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                b.as_ptr().add(p * PANEL).cast(),
            ))
        };
        let b1: __m512bh = if TWO {
            // SAFETY: with `TWO`, the second panel starts at `pairs * PANEL` and is as long.
            unsafe {
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                    b.as_ptr().add(second + p * PANEL).cast(),
                ))
            }
        } else {
            // SAFETY: a bit cast between two 512-bit vector types.
            unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_setzero_si512()) }
        };
        for (r, sum) in sums.iter_mut().enumerate() {
            // SAFETY: a bit cast between two 512-bit vector types.
            let broadcast: __m512bh = unsafe {
                std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(a[r * pairs + p] as i32))
            };
            sum[0] = _mm512_dpbf16_ps(sum[0], broadcast, b0);
            if TWO {
                sum[1] = _mm512_dpbf16_ps(sum[1], broadcast, b1);
            }
        }
    }
    for (r, sum) in sums.iter().enumerate() {
        for (half, lanes) in sum.iter().enumerate() {
            let start = half * PANEL;
            if start >= width {
                continue;
            }
            let count = (width - start).min(PANEL);
            let mask: __mmask16 = if count == PANEL {
                0xffff
            } else {
                (1u16 << count) - 1
            };
            // SAFETY: the mask keeps the store inside row r's `width` columns.
            unsafe {
                let target = c.as_mut_ptr().add(r * ldc + start);
                let value = if accumulate {
                    _mm512_add_ps(*lanes, _mm512_maskz_loadu_ps(mask, target))
                } else {
                    *lanes
                };
                _mm512_mask_storeu_ps(target, mask, value);
            }
        }
    }
}

/// [`tile`] for `rows` (1..=6) rows.
///
/// # Safety
///
/// As [`tile`]'s, with `R = rows`.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    a: &[u32],
    pairs: usize,
    rows: usize,
    b: &[u32],
    width: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    macro_rules! rows {
        ($($r:literal),*) => {
            match (rows, width > PANEL) {
                // SAFETY: the caller's guarantees, for the `R` and `TWO` matched here.
                $(
                    ($r, true) => unsafe { tile::<$r, true>(a, pairs, b, width, c, ldc, accumulate) },
                    ($r, false) => unsafe { tile::<$r, false>(a, pairs, b, width, c, ldc, accumulate) },
                )*
                _ => unreachable!("1 to {ROWS} rows"),
            }
        };
    }
    rows!(1, 2, 3, 4, 5, 6)
}

/// Never called: [`available`] is false off x86-64.
///
/// # Safety
///
/// None needed; it only panics.
#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    _: &[u32],
    _: usize,
    _: usize,
    _: &[u32],
    _: usize,
    _: &mut [f32],
    _: usize,
    _: bool,
) {
    unreachable!("gemm_bf16 checks available() first")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_bf16_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        // Just above halfway rounds up.
        assert_eq!(
            from_bf16(to_bf16(1.0 + 1.0 / 256.0 + 1.0 / 65536.0)),
            1.0 + 1.0 / 128.0
        );
        assert_eq!(from_bf16(to_bf16(-3.5)), -3.5);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
    }

    /// Element (i, j) of a `rows x columns` matrix of distinct values laid out in one of three
    /// ways: rows contiguous, columns contiguous, or neither (every other slot, row-major).
    fn laid_out(rows: usize, columns: usize, layout: usize, seed: usize) -> (Vec<f32>, Vec<f32>) {
        let value = |i: usize| ((i * 7919 % 1000) as f32 - 500.0) / 250.0;
        let logical: Vec<f32> = (0..rows * columns).map(|i| value(i + seed)).collect();
        let mut data = vec![f32::NAN; 2 * rows * columns];
        for i in 0..rows {
            for j in 0..columns {
                let at = match layout {
                    0 => i * columns + j,
                    1 => j * rows + i,
                    _ => 2 * (i * columns + j),
                };
                data[at] = logical[i * columns + j];
            }
        }
        (logical, data)
    }

    fn strides(rows: usize, columns: usize, layout: usize, data: &[f32]) -> Strided<'_> {
        let (row_stride, column_stride) = match layout {
            0 => (columns, 1),
            1 => (1, rows),
            _ => (2 * columns, 2),
        };
        Strided {
            data,
            row_stride,
            column_stride,
        }
    }

    /// Whether this CPU lacks the instructions (the test is then skipped, and says so).
    fn skipped_without_bf16() -> bool {
        if !available() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
        }
        !available()
    }

    /// `c` (`m x n`) is `before + a . b` (`a` `m x k`, `b` `k x n`, both row-major) on
    /// bf16-rounded operands, to f32's precision.
    fn assert_product(
        dims: [usize; 3],
        a: &[f32],
        b: &[f32],
        before: &[f32],
        c: &[f32],
        what: &str,
    ) {
        let [m, n, k] = dims;
        let round = |x: f32| from_bf16(to_bf16(x)) as f64;
        for i in 0..m {
            for j in 0..n {
                let exact: f64 = (0..k)
                    .map(|p| round(a[i * k + p]) * round(b[p * n + j]))
                    .sum::<f64>()
                    + before[i * n + j] as f64;
                let got = c[i * n + j] as f64;
                assert!(
                    (got - exact).abs() < 1e-4 * (1.0 + exact.abs()),
                    "{what}: c[{i}][{j}] {got} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn products_equal_the_bf16_rounded_definition() {
        if skipped_without_bf16() {
            return;
        }
        // Odd sizes: rows and columns beyond whole tiles and panels, an odd k; every layout of
        // each operand, since each has its own packer.
        for (m, n, k) in [(13, 37, 21), (6, 16, 2), (1, 70, 33)] {
            for (a_layout, b_layout) in (0..3).flat_map(|a| (0..3).map(move |b| (a, b))) {
                let (a, a_data) = laid_out(m, k, a_layout, 0);
                let (b, b_data) = laid_out(k, n, b_layout, 77);
                let before: Vec<f32> = laid_out(m, n, 0, 5).0;
                let mut c = before.clone();
                gemm_bf16(
                    m,
                    n,
                    k,
                    strides(m, k, a_layout, &a_data),
                    strides(k, n, b_layout, &b_data),
                    &mut c,
                    true,
                );
                let what = format!("{m}x{n}x{k}, layouts {a_layout}/{b_layout}");
                assert_product([m, n, k], &a, &b, &before, &c, &what);
            }
        }
    }

    #[test]
    fn vector_packers_equal_the_portable_ones() {
        if skipped_without_bf16() {
            return;
        }
        // Lengths around the 16-value step, odd ones included; values that round both ways and
        // ties.
        for length in [1, 2, 15, 16, 17, 31, 32, 33, 47, 70] {
            let (values, _) = laid_out(2, length, 0, length);
            let mut values = values;
            values[0] = 1.0 + 1.0 / 256.0;
            let (low, high) = values.split_at(length);
            let mut fast = vec![7u32; length.div_ceil(2)];
            convert_pairs(low, &mut fast);
            let slow: Vec<u32> = (0..length.div_ceil(2))
                .map(|p| pair(low[2 * p], low.get(2 * p + 1).copied().unwrap_or(0.0)))
                .collect();
            assert_eq!(fast, slow, "convert_pairs, {length} values");
            let (mut low_bf16, mut high_bf16) = (vec![0u16; length], vec![0u16; length]);
            convert_to_bf16(low, &mut low_bf16);
            convert_to_bf16(high, &mut high_bf16);
            let panels = length.div_ceil(PANEL);
            for high in [Some(&high_bf16[..]), None] {
                let (mut fast, mut slow) = (
                    vec![7u32; panels * 3 * PANEL],
                    vec![9u32; panels * 3 * PANEL],
                );
                interleave_bf16_rows(&low_bf16, high, 3, &mut fast);
                interleave_bf16_rows_portable(&low_bf16, high, 3, &mut slow);
                for q in 0..panels {
                    let lanes = q * 3 * PANEL..q * 3 * PANEL + PANEL;
                    assert_eq!(
                        fast[lanes.clone()],
                        slow[lanes],
                        "interleave_bf16_rows, {length} columns"
                    );
                }
            }
        }
    }

    #[test]
    fn operands_written_in_bf16_pack_as_the_f32_ones() {
        if skipped_without_bf16() {
            return;
        }
        // The two ways into each layout must agree: bf16 values written by the caller (the
        // im2col path) and f32 values rounded by the packer; odd k and columns past a panel.
        for (k, columns) in [(5, 18), (6, 16), (1, 33), (33, 1)] {
            let (_, f32_data) = laid_out(k, columns, 0, k);
            let mut bf16_data = vec![0u16; k * columns];
            convert_to_bf16(&f32_data[..k * columns], &mut bf16_data);
            let expected: Vec<u16> = f32_data[..k * columns]
                .iter()
                .map(|v| to_bf16(*v))
                .collect();
            assert_eq!(bf16_data, expected, "convert_to_bf16, {k} x {columns}");

            let (mut from_f32, mut from_bf16) = (PackedPanels::default(), PackedPanels::default());
            from_f32.pack(k, columns, strides(k, columns, 0, &f32_data));
            from_bf16.data = vec![0xdead_beef; 4096];
            from_bf16.pack_bf16(k, columns, &bf16_data, columns);
            assert_eq!(from_f32.data, from_bf16.data, "panels, {k} x {columns}");
            let mut portable = vec![7u32; from_f32.data.len()];
            for p in 0..k.div_ceil(2) {
                let high = (2 * p + 1 < k).then(|| &bf16_data[(2 * p + 1) * columns..][..columns]);
                interleave_bf16_rows_portable(
                    &bf16_data[2 * p * columns..][..columns],
                    high,
                    k.div_ceil(2),
                    &mut portable[p * PANEL..],
                );
            }
            assert_eq!(from_f32.data, portable, "portable panels, {k} x {columns}");

            // Rows: `columns` rows of k values.
            let (_, rows_data) = laid_out(columns, k, 0, 3);
            let (mut from_f32, mut from_bf16) = (PackedRows::default(), PackedRows::default());
            from_f32.pack(columns, k, strides(columns, k, 0, &rows_data));
            from_bf16.data = vec![0xdead_beef; 4096];
            let (values, stride) = from_bf16.rows_mut(columns, k);
            for (i, row) in rows_data[..columns * k].chunks_exact(k).enumerate() {
                convert_to_bf16(row, &mut values[i * stride..][..k]);
            }
            assert_eq!(
                from_f32.data,
                from_bf16.data[..from_f32.data.len()],
                "rows, {columns} x {k}"
            );
            assert_eq!(from_bf16.data.len(), from_f32.data.len());
        }
    }

    #[test]
    fn packed_operands_are_reused_across_sizes() {
        if skipped_without_bf16() {
            return;
        }
        // A larger operand first, then a smaller one into the same buffers: nothing of the first
        // may leak into the second's zero padding (its missing columns, its odd k).
        let (mut left, mut right) = (PackedRows::default(), PackedPanels::default());
        let (_, big_a) = laid_out(7, 40, 0, 1);
        let (_, big_b) = laid_out(40, 50, 0, 2);
        left.pack(7, 40, strides(7, 40, 0, &big_a));
        right.pack(40, 50, strides(40, 50, 0, &big_b));
        gemm_bf16_packed(&left, &right, &mut vec![0.0; 7 * 50], false);
        let (a, a_data) = laid_out(3, 5, 0, 3);
        let (b, b_data) = laid_out(5, 18, 1, 4);
        left.pack(3, 5, strides(3, 5, 0, &a_data));
        right.pack(5, 18, strides(5, 18, 1, &b_data));
        let mut c = vec![0.0; 3 * 18];
        gemm_bf16_packed(&left, &right, &mut c, false);
        assert_product([3, 18, 5], &a, &b, &[0.0; 3 * 18], &c, "reused buffers");
    }
}
