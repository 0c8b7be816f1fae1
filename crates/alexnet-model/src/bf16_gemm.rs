//! Matrix products with bf16 operands and f32 sums, on CPUs with AVX512-BF16 (`vdpbf16ps`: 32
//! products of bf16 pairs added into 16 f32 lanes per instruction, twice the f32 rate). The opt-in
//! `model.precision = "bf16"` runs the convolutions' products through it.
//!
//! Both operands are rounded to bf16 (8 bits of mantissa, round to nearest even) as they are
//! packed; the sums stay f32. The kernel computes 6 rows x 32 columns of the result at a time
//! from a copy of `a` in bf16 (rows of pairs along k) and of `b` in panels of 16 columns, each
//! k-pair of a column interleaved, which is the layout the instruction reads.

/// Rows and columns of the result one kernel call computes.
const ROWS: usize = 6;
const PANEL: usize = 16;

/// Whether this CPU can run [`gemm_bf16`].
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// f32 -> bf16, rounding to nearest even (NaN stays NaN).
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
    assert!(available(), "gemm_bf16 needs AVX512-BF16");
    let pairs = k.div_ceil(2);
    // a as bf16 rows, k padded to even with a zero: a u32 per pair.
    let mut a_packed = vec![0u32; m * pairs];
    for i in 0..m {
        for p in 0..pairs {
            let low = to_bf16(a.at(i, 2 * p)) as u32;
            let high = if 2 * p + 1 < k {
                to_bf16(a.at(i, 2 * p + 1)) as u32
            } else {
                0
            };
            a_packed[i * pairs + p] = low | (high << 16);
        }
    }
    // b in panels of 16 columns: for each pair, 16 columns of (b[2p][j], b[2p+1][j]).
    let panels = n.div_ceil(PANEL);
    let mut b_packed = vec![0u32; panels * pairs * PANEL];
    for panel in 0..panels {
        for p in 0..pairs {
            for col in 0..PANEL {
                let j = panel * PANEL + col;
                if j >= n {
                    continue;
                }
                let low = to_bf16(b.at(2 * p, j)) as u32;
                let high = if 2 * p + 1 < k {
                    to_bf16(b.at(2 * p + 1, j)) as u32
                } else {
                    0
                };
                b_packed[(panel * pairs + p) * PANEL + col] = low | (high << 16);
            }
        }
    }
    // Two panels of b (k x 32, 64 KB at k = 1,000) stay in cache while every row block of a
    // passes over them.
    for panel in (0..panels).step_by(2) {
        let width = (n - panel * PANEL).min(2 * PANEL);
        for row in (0..m).step_by(ROWS) {
            let rows = ROWS.min(m - row);
            // SAFETY: `available()` was checked above; the slices cover what the kernel reads.
            unsafe {
                kernel(
                    &a_packed[row * pairs..],
                    pairs,
                    rows,
                    &b_packed[panel * pairs * PANEL..],
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

    #[test]
    fn products_equal_the_bf16_rounded_definition() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        // Odd sizes: rows and columns beyond whole tiles, an odd k, a transposed operand.
        let (m, n, k) = (13, 37, 21);
        let value = |i: usize| ((i * 7919 % 1000) as f32 - 500.0) / 250.0;
        let a: Vec<f32> = (0..m * k).map(value).collect();
        let b_transposed: Vec<f32> = (0..n * k).map(|i| value(i + 77)).collect();
        let mut c: Vec<f32> = (0..m * n).map(|i| value(i + 5)).collect();
        let before = c.clone();
        gemm_bf16(
            m,
            n,
            k,
            Strided {
                data: &a,
                row_stride: k,
                column_stride: 1,
            },
            Strided {
                data: &b_transposed,
                row_stride: 1,
                column_stride: k,
            },
            &mut c,
            true,
        );
        let round = |x: f32| from_bf16(to_bf16(x)) as f64;
        for i in 0..m {
            for j in 0..n {
                let exact: f64 = (0..k)
                    .map(|p| round(a[i * k + p]) * round(b_transposed[j * k + p]))
                    .sum::<f64>()
                    + before[i * n + j] as f64;
                let got = c[i * n + j] as f64;
                assert!(
                    (got - exact).abs() < 1e-4 * (1.0 + exact.abs()),
                    "c[{i}][{j}] {got} vs {exact}"
                );
            }
        }
    }
}
