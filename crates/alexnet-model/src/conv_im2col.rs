//! A 2-D convolution on the CPU as matrix products, Caffe's way: each image's input unrolled into
//! columns (`im2col`), one product per image and group.
//!
//! For group g of image n, with `P = Ho x Wo` output positions and `R = Cin/g x kh x kw` taps,
//!
//! ```text
//! forward:          Y_ng (Cout/g x P)  = W_g (Cout/g x R) . cols_ng (R x P)   (+ bias)
//! weight gradient:  dW_g (Cout/g x R) += dY_ng (Cout/g x P) . cols_ng^T (P x R)
//! input gradient:   dcols_ng (R x P)   = W_g^T (R x Cout/g) . dY_ng (Cout/g x P),
//!                   then each column added back where im2col took it from (`col2im`)
//! ```
//!
//! Burn's generic weight gradient instead runs a convolution whose kernel is the output gradient
//! (27x27 for the paper's conv2) and whose "batch" is the input channels: a product with a
//! 25-wide side, which runs at a fraction of the machine's speed. Here every product is as big as
//! an image's, and the images are shared among threads, each adding into its own gradient.

use rayon::prelude::*;

use crate::bf16_gemm::{PackedPanels, PackedRows, Strided, convert_into, gemm_bf16_packed};
use crate::parallel_zeros::zeros;

/// Shapes and options of one convolution (symmetric padding, no dilation: what AlexNet uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// `[batch, channels, height, width]` of the input.
    pub input: [usize; 4],
    /// `[out_channels, in_channels / groups, kh, kw]`.
    pub weight: [usize; 4],
    pub params: ConvParams,
}

/// What a convolution is besides its tensors: the one parameter struct of the operation, from
/// the layer (`ConvBlock`) through the backend operation (`conv_op.rs`) to these kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: [usize; 2],
    /// Symmetric: the same on both sides of each axis.
    pub padding: [usize; 2],
    /// 2 for the paper's towers (Section 3.2).
    pub groups: usize,
    /// Products with bf16 operands (`bf16_gemm.rs`) instead of f32.
    pub bf16: bool,
    /// Winograd's F(2x2, 3x3) (`conv_winograd.rs`) where it applies, instead of im2col.
    pub winograd: bool,
}

impl ConvGeometry {
    /// `[height, width]` of the output.
    pub fn output_size(&self) -> [usize; 2] {
        let along = |axis: usize| {
            (self.input[2 + axis] + 2 * self.params.padding[axis] - self.weight[2 + axis])
                / self.params.stride[axis]
                + 1
        };
        [along(0), along(1)]
    }

    /// Taps per output channel: `Cin/g x kh x kw`.
    fn taps(&self) -> usize {
        self.weight[1] * self.weight[2] * self.weight[3]
    }

    /// The input row that output row `oh` meets through kernel row `kernel_row`, or `None` in
    /// the padding above or below.
    fn input_row(&self, oh: usize, kernel_row: usize) -> Option<usize> {
        let (sh, ph) = (self.params.stride[0], self.params.padding[0]);
        let y = (oh * sh + kernel_row).checked_sub(ph)?;
        (y < self.input[2]).then_some(y)
    }

    /// For kernel column `j`: the output columns `first..end` whose tap lands inside an input
    /// line (`ow * sw + j - pw` in `0..width`; those before and after meet the padding), and the
    /// input column that `first` reads.
    fn tap_columns(&self, j: usize) -> (usize, usize, usize) {
        let width = self.input[3];
        let [_, wo] = self.output_size();
        let (sw, pw) = (self.params.stride[1], self.params.padding[1]);
        let first = pw.saturating_sub(j).div_ceil(sw).min(wo);
        let end = ((width + pw).saturating_sub(j))
            .div_ceil(sw)
            .clamp(first, wo);
        (first, end, first * sw + j - pw)
    }
}

/// How a pass shares its work among threads: whole images when there are enough of them (each
/// product single-threaded, at least this many images a thread), otherwise (a lone image, as in
/// inference at batch 1) the products and the im2col themselves.
fn image_parallelism(batch: usize) -> (gemm::Parallelism, usize, bool) {
    let threads = rayon::current_num_threads().max(1);
    let lone_images = batch < threads;
    let parallelism = if lone_images {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    (parallelism, batch.div_ceil(threads).max(1), lone_images)
}

/// `dst (m x n, row-major) = lhs (m x k) . rhs (k x n)` (plus `dst` when `accumulate`) in f32 by
/// the `gemm` crate, each operand read through its strides.
fn product(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    accumulate: bool,
    lhs: Strided,
    rhs: Strided,
    parallelism: gemm::Parallelism,
) {
    debug_assert!(
        lhs.holds(m, k) && rhs.holds(k, n),
        "operands inside their slices"
    );
    debug_assert!(dst.len() >= m * n, "dst holds m x n");
    // SAFETY: the strides keep every element read inside `lhs.data` and `rhs.data`, and `dst`
    // holds m x n row-major (both checked above in debug builds).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.column_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.column_stride as isize,
            rhs.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A row-major matrix with `columns` columns, or its transpose.
fn rows_of(data: &[f32], columns: usize) -> Strided<'_> {
    Strided {
        data,
        row_stride: columns,
        column_stride: 1,
    }
}

fn transposed(data: &[f32], columns: usize) -> Strided<'_> {
    Strided {
        data,
        row_stride: 1,
        column_stride: columns,
    }
}

/// A thread's buffers for the bf16 forward pass: the image and its columns in bf16, and the
/// columns packed for the kernel.
#[derive(Default)]
struct Bf16Scratch {
    image: Vec<u16>,
    cols: Vec<u16>,
    panels: PackedPanels,
}

/// With `model.precision = "bf16"`, each group's filters packed once for every image's product:
/// `W_g` (Cout/g x R) for the forward pass, `W_g^T` for the input gradient.
fn packed_filters(weight: &[f32], geometry: &ConvGeometry, transpose: bool) -> Vec<PackedRows> {
    let (taps, groups) = (geometry.taps(), geometry.params.groups);
    let group_out = geometry.weight[0] / groups;
    (0..groups)
        .map(|g| {
            let w = &weight[g * group_out * taps..][..group_out * taps];
            let mut packed = PackedRows::default();
            if transpose {
                packed.pack(taps, group_out, transposed(w, taps));
            } else {
                packed.pack(group_out, taps, rows_of(w, taps));
            }
            packed
        })
        .collect()
}

/// `cols[r][p]`: the input value that tap `r` of the group's kernel meets at output position `p`
/// (zero in the padding). `image` is one image's `[channels, height, width]`. With `parallel`, the
/// kernel rows of every channel are shared among threads (for a lone image; otherwise threads
/// take whole images): per channel alone, conv1's three would leave one of two threads idle
/// half the time.
fn im2col(image: &[f32], geometry: &ConvGeometry, group: usize, cols: &mut [f32], parallel: bool) {
    let positions = geometry.output_size().iter().product();
    im2col_strided(image, geometry, group, cols, positions, parallel);
}

/// [`im2col`] of any element type (bf16 values for the bf16 products: half the bytes, and no
/// conversion pass over the columns), row `r` of `cols` at `cols[r * row_stride..]`.
fn im2col_strided<T: ColumnValue>(
    image: &[T],
    geometry: &ConvGeometry,
    group: usize,
    cols: &mut [T],
    row_stride: usize,
    parallel: bool,
) {
    let [_, channels, kh, kw] = geometry.weight;
    let rows_per_kernel_row = kw * row_stride;
    let fill = |(r, rows): (usize, &mut [T])| {
        let source = KernelRow::new(image, geometry, group, r / kh, r % kh);
        T::fill_kernel_row(&source, rows, row_stride)
    };
    if parallel {
        cols.par_chunks_mut(rows_per_kernel_row)
            .take(channels * kh)
            .enumerate()
            .for_each(fill);
    } else {
        cols.chunks_mut(rows_per_kernel_row)
            .take(channels * kh)
            .enumerate()
            .for_each(fill);
    }
}

/// What one kernel row of im2col reads: kernel row `kernel_row` of one input channel's plane.
struct KernelRow<'a, T> {
    geometry: &'a ConvGeometry,
    plane: &'a [T],
    kernel_row: usize,
}

impl<'a, T> KernelRow<'a, T> {
    /// Kernel row `kernel_row` of input channel `channel` of `group`, over one image
    /// (`[channels, height, width]`).
    fn new(
        image: &'a [T],
        geometry: &'a ConvGeometry,
        group: usize,
        channel: usize,
        kernel_row: usize,
    ) -> Self {
        let [_, _, height, width] = geometry.input;
        let first = (group * geometry.weight[1] + channel) * height * width;
        KernelRow {
            geometry,
            plane: &image[first..][..height * width],
            kernel_row,
        }
    }

    /// The input line output row `oh` meets, or `None` in the padding above or below.
    fn line(&self, oh: usize) -> Option<&'a [T]> {
        let width = self.geometry.input[3];
        let y = self.geometry.input_row(oh, self.kernel_row)?;
        Some(&self.plane[y * width..][..width])
    }
}

/// What [`im2col_strided`] copies: f32 values, or bf16 ones (as u16).
trait ColumnValue: Copy + Default + Send + Sync {
    /// The `kw` rows (each `row_stride` apart in `rows`) of `source`'s kernel row: its own
    /// taps, one for each kernel column.
    fn fill_kernel_row(source: &KernelRow<Self>, rows: &mut [Self], row_stride: usize) {
        im2col_kernel_row(source, rows, row_stride)
    }
}

impl ColumnValue for f32 {}

impl ColumnValue for u16 {
    fn fill_kernel_row(source: &KernelRow<u16>, rows: &mut [u16], row_stride: usize) {
        #[cfg(target_arch = "x86_64")]
        if source.geometry.params.stride[1] == 1
            && source.geometry.output_size()[1] <= 32
            && crate::bf16_gemm::available()
        {
            // SAFETY: the CPU has AVX512BW (bf16_gemm::available); the rows are one output row
            // of at most 32 values each.
            return unsafe { im2col_kernel_row_masked(source, rows, row_stride) };
        }
        im2col_kernel_row(source, rows, row_stride)
    }
}

/// [`im2col_kernel_row`] for bf16 values, stride 1 along the row and output rows of at most 32
/// values: each output row is one masked load and one masked store, padding included. The
/// generic fills and copies of a few values each became calls to `memset` and `memcpy` that took
/// 17% of an alexnet-cifar step in bf16 (`docs/results.md`).
///
/// # Safety
///
/// The CPU has AVX512F and AVX512BW; the geometry's column stride is 1 and its output rows are
/// at most 32 wide.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn im2col_kernel_row_masked(source: &KernelRow<u16>, rows: &mut [u16], row_stride: usize) {
    use std::arch::x86_64::*;
    let geometry = source.geometry;
    let [ho, wo] = geometry.output_size();
    assert!(
        geometry.params.stride[1] == 1 && wo <= 32,
        "one masked store a row"
    );
    let lanes = |count: usize| {
        if count >= 32 {
            u32::MAX
        } else {
            (1u32 << count) - 1
        }
    };
    for j in 0..geometry.weight[3] {
        let (first, end, start) = geometry.tap_columns(j);
        // Lane x of a line's load is line[start + x - first]; only lanes first..end are read.
        let (run, all) = (lanes(end) & !lanes(first), lanes(wo));
        let row = &mut rows[j * row_stride..][..ho * wo];
        for (oh, out) in row.chunks_exact_mut(wo).enumerate() {
            let values = match source.line(oh) {
                None => _mm512_setzero_si512(),
                Some(line) => {
                    assert!(
                        start + (end - first) <= line.len(),
                        "the run inside the line"
                    );
                    let lane_zero = line.as_ptr().wrapping_add(start).wrapping_sub(first);
                    // SAFETY: the mask reads only line[start..start + end - first], inside the
                    // line (asserted above).
                    unsafe { _mm512_maskz_loadu_epi16(run, lane_zero.cast()) }
                }
            };
            // SAFETY: `all` covers the wo values of `out`.
            unsafe { _mm512_mask_storeu_epi16(out.as_mut_ptr().cast(), all, values) };
        }
    }
}

/// The `kw` rows of [`im2col`] that `source`'s kernel row fills.
fn im2col_kernel_row<T: Copy + Default>(source: &KernelRow<T>, rows: &mut [T], row_stride: usize) {
    let geometry = source.geometry;
    let [ho, wo] = geometry.output_size();
    let sw = geometry.params.stride[1];
    for j in 0..geometry.weight[3] {
        let (first, end, start) = geometry.tap_columns(j);
        let row = &mut rows[j * row_stride..][..ho * wo];
        for (oh, out) in row.chunks_exact_mut(wo).enumerate() {
            let Some(line) = source.line(oh) else {
                out.fill(T::default());
                continue;
            };
            out[..first].fill(T::default());
            out[end..].fill(T::default());
            if sw == 1 {
                out[first..end].copy_from_slice(&line[start..start + end - first]);
            } else {
                for (value, x) in out[first..end].iter_mut().zip((start..).step_by(sw)) {
                    *value = line[x];
                }
            }
        }
    }
}

/// The inverse of [`im2col`]'s gather: every entry of `cols` added to the input position it was
/// taken from (entries that fell in the padding are dropped). `image` is one image's input
/// gradient, `[channels, height, width]`.
fn col2im(cols: &[f32], geometry: &ConvGeometry, group: usize, image: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if geometry.params.stride[1] == 1 && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX512F; the stride along the rows is 1.
        return unsafe { col2im_rows_avx512(cols, geometry, group, image) };
    }
    col2im_portable(cols, geometry, group, image);
}

/// [`col2im`] for stride 1 along the rows: each input line gathers the contributions of a kernel
/// row's `kw` taps in a register, 16 columns at a time under masks, and is read and written once.
/// Added tap by tap, each tap's run a column to the right of the last one's, every load waited
/// on the overlapping store before it: col2im took 13% of an alexnet-cifar step in bf16 (`docs/results.md`),
/// with AVX-512 or without.
///
/// # Safety
///
/// The CPU has AVX512F; the geometry's column stride is 1.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn col2im_rows_avx512(
    cols: &[f32],
    geometry: &ConvGeometry,
    group: usize,
    image: &mut [f32],
) {
    use crate::bf16_gemm::lanes_mask;
    use std::arch::x86_64::*;
    let [_, _, height, width] = geometry.input;
    let [_, channels, kh, kw] = geometry.weight;
    let [ho, wo] = geometry.output_size();
    assert!(geometry.params.stride[1] == 1, "stride 1 along the rows");
    let positions = ho * wo;
    let lanes = |from: usize, to: usize| lanes_mask(to) & !lanes_mask(from);
    let taps: Vec<_> = (0..kw).map(|j| geometry.tap_columns(j)).collect();
    for c in 0..channels {
        let plane = &mut image[(group * channels + c) * height * width..][..height * width];
        for i in 0..kh {
            let kernel_row = &cols[(c * kh + i) * kw * positions..][..kw * positions];
            for oh in 0..ho {
                let Some(y) = geometry.input_row(oh, i) else {
                    continue;
                };
                let line = &mut plane[y * width..][..width];
                for x0 in (0..width).step_by(16) {
                    let in_line = lanes(0, width - x0);
                    // SAFETY: the mask covers line[x0..width].
                    let mut sum = unsafe { _mm512_maskz_loadu_ps(in_line, line.as_ptr().add(x0)) };
                    for (j, &(first, end, start)) in taps.iter().enumerate() {
                        // Line column p takes the tap's value at output column p - start + first,
                        // for p in start..start + end - first.
                        let (from, to) = (start.max(x0), (start + end - first).min(x0 + 16));
                        if from >= to {
                            continue;
                        }
                        let row = &kernel_row[j * positions + oh * wo..][..wo];
                        let lane_zero = row.as_ptr().wrapping_add(first + x0).wrapping_sub(start);
                        // SAFETY: the mask reads only row[from - start + first..to - start +
                        // first], inside the row's wo values.
                        let values =
                            unsafe { _mm512_maskz_loadu_ps(lanes(from - x0, to - x0), lane_zero) };
                        sum = _mm512_add_ps(sum, values);
                    }
                    // SAFETY: as the load.
                    unsafe { _mm512_mask_storeu_ps(line.as_mut_ptr().add(x0), in_line, sum) };
                }
            }
        }
    }
}

/// [`col2im`] tap by tap, for any stride (the CPUs without AVX-512).
fn col2im_portable(cols: &[f32], geometry: &ConvGeometry, group: usize, image: &mut [f32]) {
    let [_, _, height, width] = geometry.input;
    let [_, channels, kh, kw] = geometry.weight;
    let [ho, wo] = geometry.output_size();
    let sw = geometry.params.stride[1];
    let positions = ho * wo;
    for c in 0..channels {
        let plane = &mut image[(group * channels + c) * height * width..][..height * width];
        for i in 0..kh {
            for j in 0..kw {
                let row = &cols[((c * kh + i) * kw + j) * positions..][..positions];
                let (first, end, start) = geometry.tap_columns(j);
                for (oh, values) in row.chunks_exact(wo).enumerate() {
                    let Some(y) = geometry.input_row(oh, i) else {
                        continue;
                    };
                    let line = &mut plane[y * width..][..width];
                    if sw == 1 {
                        let run = &mut line[start..start + end - first];
                        for (target, v) in run.iter_mut().zip(&values[first..end]) {
                            *target += v;
                        }
                    } else {
                        for (x, v) in (start..).step_by(sw).zip(&values[first..end]) {
                            line[x] += v;
                        }
                    }
                }
            }
        }
    }
}

/// `dX` (`[batch, Cin, height, width]`, flattened) of a convolution with weights `weight` and
/// output gradient `output_grad`, both contiguous. Each image's gradient is its own, so threads
/// share the images without any sum between them.
pub fn conv2d_input_grad(weight: &[f32], output_grad: &[f32], geometry: &ConvGeometry) -> Vec<f32> {
    let [batch, in_channels, height, width] = geometry.input;
    let out_channels = geometry.weight[0];
    let [ho, wo] = geometry.output_size();
    let (positions, taps, groups) = (ho * wo, geometry.taps(), geometry.params.groups);
    let group_out = out_channels / groups;
    let image_size = in_channels * height * width;
    let grad_size = out_channels * positions;
    let mut input_grad = zeros::<f32>(batch * image_size);
    let (parallelism, per_thread, _) = image_parallelism(batch);
    let bf16_filters = geometry
        .params
        .bf16
        .then(|| packed_filters(weight, geometry, true));
    input_grad
        .par_chunks_mut(image_size)
        .with_min_len(per_thread)
        .enumerate()
        .for_each_init(
            || (vec![0.0f32; taps * positions], PackedPanels::default()),
            |(cols, panels), (n, image)| {
                for g in 0..groups {
                    let dy = &output_grad[n * grad_size + g * group_out * positions..]
                        [..group_out * positions];
                    let w = &weight[g * group_out * taps..][..group_out * taps];
                    // cols (taps x positions) = w^T (taps x group_out) . dy (group_out x positions)
                    if let Some(filters) = &bf16_filters {
                        panels.pack(group_out, positions, rows_of(dy, positions));
                        gemm_bf16_packed(&filters[g], panels, cols, false);
                    } else {
                        product(
                            [taps, positions, group_out],
                            cols,
                            false,
                            transposed(w, taps),
                            rows_of(dy, positions),
                            parallelism,
                        );
                    }
                    col2im(cols, geometry, g, image);
                }
            },
        );
    input_grad
}

/// `W.cols` per image and group, plus the bias: the output `[batch, Cout, Ho, Wo]`, flattened.
/// `x`, `weight` and `bias` are contiguous.
pub fn conv2d_forward(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    geometry: &ConvGeometry,
) -> Vec<f32> {
    let [batch, in_channels, height, width] = geometry.input;
    let out_channels = geometry.weight[0];
    let [ho, wo] = geometry.output_size();
    let (positions, taps, groups) = (ho * wo, geometry.taps(), geometry.params.groups);
    let group_out = out_channels / groups;
    let image_size = in_channels * height * width;
    let output_size = out_channels * positions;
    let mut output = zeros::<f32>(batch * output_size);
    let (parallelism, per_thread, lone_images) = image_parallelism(batch);
    let bf16_filters = geometry
        .params
        .bf16
        .then(|| packed_filters(weight, geometry, false));
    output
        .par_chunks_mut(output_size)
        .with_min_len(per_thread)
        .enumerate()
        .for_each_init(
            || {
                let f32_cols = if bf16_filters.is_some() {
                    0
                } else {
                    taps * positions
                };
                (vec![0.0f32; f32_cols], Bf16Scratch::default())
            },
            |(cols, scratch), (n, out)| {
                let image = &x[n * image_size..][..image_size];
                if bf16_filters.is_some() {
                    convert_into(image, &mut scratch.image);
                }
                for g in 0..groups {
                    let y = &mut out[g * group_out * positions..][..group_out * positions];
                    let w = &weight[g * group_out * taps..][..group_out * taps];
                    // y (group_out x positions) = w (group_out x taps) . cols (taps x positions)
                    if let Some(filters) = &bf16_filters {
                        let Bf16Scratch {
                            image,
                            cols,
                            panels,
                        } = scratch;
                        cols.resize(taps * positions, 0);
                        im2col_strided(image, geometry, g, cols, positions, lone_images);
                        panels.pack_bf16(taps, positions, cols, positions);
                        gemm_bf16_packed(&filters[g], panels, y, false);
                    } else {
                        im2col(image, geometry, g, cols, lone_images);
                        product(
                            [group_out, positions, taps],
                            y,
                            false,
                            rows_of(w, taps),
                            rows_of(cols, positions),
                            parallelism,
                        );
                    }
                }
                for (map, b) in out.chunks_exact_mut(positions).zip(bias) {
                    map.iter_mut().for_each(|v| *v += b);
                }
            },
        );
    output
}

/// `dW` (`[Cout, Cin/g, kh, kw]`, flattened) of a convolution with input `x` and output gradient
/// `output_grad` (`[batch, Cout, Ho, Wo]`), both contiguous.
pub fn conv2d_weight_grad(x: &[f32], output_grad: &[f32], geometry: &ConvGeometry) -> Vec<f32> {
    let [batch, in_channels, height, width] = geometry.input;
    let out_channels = geometry.weight[0];
    let [ho, wo] = geometry.output_size();
    let (positions, taps, groups) = (ho * wo, geometry.taps(), geometry.params.groups);
    let group_out = out_channels / groups;
    let image_size = in_channels * height * width;
    let grad_size = out_channels * positions;
    let weight_size = out_channels * taps;
    // One partial gradient per fixed run of images, added in order at the end: the same sums
    // in the same order on every call, so that a seeded run is repeatable.
    let threads = rayon::current_num_threads().max(1);
    let runs: Vec<std::ops::Range<usize>> = (0..threads)
        .map(|t| batch * t / threads..batch * (t + 1) / threads)
        .filter(|run| !run.is_empty())
        .collect();
    let bf16 = geometry.params.bf16;
    let partials: Vec<Vec<f32>> = runs
        .into_par_iter()
        .map(|run| {
            let mut grad = vec![0.0f32; weight_size];
            let mut cols = vec![0.0f32; if bf16 { 0 } else { taps * positions }];
            let (mut rows, mut panels) = (PackedRows::default(), PackedPanels::default());
            let mut image_bf16 = Vec::new();
            for n in run {
                let image = &x[n * image_size..][..image_size];
                if bf16 {
                    convert_into(image, &mut image_bf16);
                }
                for g in 0..groups {
                    let dy = &output_grad[n * grad_size + g * group_out * positions..]
                        [..group_out * positions];
                    let dw = &mut grad[g * group_out * taps..][..group_out * taps];
                    if bf16 {
                        // dw^T (taps x group_out) += cols (taps x positions) . dy^T: im2col
                        // writes the left operand's layout itself (rows of k-pairs along the
                        // positions), and the spread of pairs the right operand needs is over
                        // dy, the smaller of the two.
                        let (cols_bf16, stride) = rows.rows_mut(taps, positions);
                        im2col_strided(&image_bf16, geometry, g, cols_bf16, stride, false);
                        panels.pack(positions, group_out, transposed(dy, positions));
                        gemm_bf16_packed(&rows, &panels, dw, true);
                    } else {
                        im2col(image, geometry, g, &mut cols, false);
                        // dw (group_out x taps) += dy (group_out x positions) . cols^T
                        product(
                            [group_out, taps, positions],
                            dw,
                            true,
                            rows_of(dy, positions),
                            transposed(&cols, positions),
                            gemm::Parallelism::None,
                        );
                    }
                }
            }
            grad
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut total = partials.next().unwrap_or_else(|| vec![0.0; weight_size]);
    for partial in partials {
        total.iter_mut().zip(&partial).for_each(|(a, b)| *a += b);
    }
    if bf16 {
        // Each group's block holds dw^T: turn it back into [Cout/g, taps].
        for block in total.chunks_exact_mut(group_out * taps) {
            let transposed_block = block.to_vec();
            for (o, row) in block.chunks_exact_mut(taps).enumerate() {
                for (t, value) in row.iter_mut().enumerate() {
                    *value = transposed_block[t * group_out + o];
                }
            }
        }
    }
    total
}

/// The input gradient of a stride-1 convolution is itself a convolution: of the output gradient,
/// padded by `k - 1 - p`, with each filter turned half a circle and each group's input and output
/// channels swapped (`W'[c][o][i][j] = W[o][c][kh - 1 - i][kw - 1 - j]`). Returns those filters
/// and that convolution's geometry (its output is `geometry.input`), or `None` where the stride
/// is not 1 or the padding not below the kernel. Winograd's input gradient runs it
/// (`conv_winograd.rs`); for im2col, [`conv2d_input_grad`]'s products and `col2im` measured
/// faster (`examples/conv_split`).
pub fn flipped(weight: &[f32], geometry: &ConvGeometry) -> Option<(Vec<f32>, ConvGeometry)> {
    let [batch, in_channels, _, _] = geometry.input;
    let [out_channels, group_in, kh, kw] = geometry.weight;
    let ConvParams {
        stride, padding, ..
    } = geometry.params;
    if stride != [1, 1] || padding[0] >= kh || padding[1] >= kw {
        return None;
    }
    let group_out = out_channels / geometry.params.groups;
    let taps = kh * kw;
    let mut filters = vec![0.0f32; in_channels * group_out * taps];
    for g in 0..geometry.params.groups {
        for o in 0..group_out {
            for c in 0..group_in {
                let from = &weight[((g * group_out + o) * group_in + c) * taps..][..taps];
                let to = &mut filters[((g * group_in + c) * group_out + o) * taps..][..taps];
                // Reversed, the row-major kh x kw taps are the filter turned in both axes.
                to.iter_mut()
                    .zip(from.iter().rev())
                    .for_each(|(t, f)| *t = *f);
            }
        }
    }
    let [ho, wo] = geometry.output_size();
    let transposed = ConvGeometry {
        input: [batch, out_channels, ho, wo],
        weight: [in_channels, group_out, kh, kw],
        params: ConvParams {
            padding: [kh - 1 - padding[0], kw - 1 - padding[1]],
            ..geometry.params
        },
    };
    Some((filters, transposed))
}

/// `db` (`[Cout]`) of a convolution from its output gradient (`[batch, Cout, positions]`,
/// contiguous): every map of every image summed, the images added in order (a repeatable sum).
pub fn conv2d_bias_grad(output_grad: &[f32], [batch, channels, positions]: [usize; 3]) -> Vec<f32> {
    (0..channels)
        .into_par_iter()
        .map(|c| {
            (0..batch)
                .map(|n| lane_sum(&output_grad[(n * channels + c) * positions..][..positions]))
                .sum()
        })
        .collect()
}

/// The sum of `values` in eight running lanes, which the compiler keeps in one vector register
/// (a single running sum is a chain of dependent additions it may not reorder).
fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(lane, v)| *lane += v);
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::values;

    /// The definition, summed term by term: the slow, obviously right twin.
    fn direct(x: &[f32], dy: &[f32], g: &ConvGeometry) -> Vec<f32> {
        let [batch, cin, h, w] = g.input;
        let [cout, cg, kh, kw] = g.weight;
        let [ho, wo] = g.output_size();
        let per_group = cout / g.params.groups;
        let mut dw = vec![0.0f64; cout * cg * kh * kw];
        for n in 0..batch {
            for o in 0..cout {
                let group = o / per_group;
                for c in 0..cg {
                    for i in 0..kh {
                        for j in 0..kw {
                            let mut sum = 0.0f64;
                            for oh in 0..ho {
                                for ow in 0..wo {
                                    let y = (oh * g.params.stride[0] + i) as isize
                                        - g.params.padding[0] as isize;
                                    let xx = (ow * g.params.stride[1] + j) as isize
                                        - g.params.padding[1] as isize;
                                    if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
                                        continue;
                                    }
                                    let input = x[((n * cin + group * cg + c) * h + y as usize)
                                        * w
                                        + xx as usize];
                                    sum += input as f64
                                        * dy[((n * cout + o) * ho + oh) * wo + ow] as f64;
                                }
                            }
                            dw[((o * cg + c) * kh + i) * kw + j] += sum;
                        }
                    }
                }
            }
        }
        dw.into_iter().map(|v| v as f32).collect()
    }

    /// The forward definition, term by term.
    fn direct_forward(x: &[f32], w: &[f32], b: &[f32], g: &ConvGeometry) -> Vec<f32> {
        let [batch, cin, h, wd] = g.input;
        let [cout, cg, kh, kw] = g.weight;
        let [ho, wo] = g.output_size();
        let per_group = cout / g.params.groups;
        let mut y = vec![0.0f32; batch * cout * ho * wo];
        for n in 0..batch {
            for o in 0..cout {
                let group = o / per_group;
                for oh in 0..ho {
                    for ow in 0..wo {
                        let mut sum = b[o] as f64;
                        for c in 0..cg {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let yy = (oh * g.params.stride[0] + i) as isize
                                        - g.params.padding[0] as isize;
                                    let xx = (ow * g.params.stride[1] + j) as isize
                                        - g.params.padding[1] as isize;
                                    if yy < 0 || xx < 0 || yy >= h as isize || xx >= wd as isize {
                                        continue;
                                    }
                                    let input = x[((n * cin + group * cg + c) * h + yy as usize)
                                        * wd
                                        + xx as usize];
                                    sum +=
                                        input as f64 * w[((o * cg + c) * kh + i) * kw + j] as f64;
                                }
                            }
                        }
                        y[((n * cout + o) * ho + oh) * wo + ow] = sum as f32;
                    }
                }
            }
        }
        y
    }

    /// The input gradient's definition: every output position sends `w * dy` back to the inputs
    /// it read.
    fn direct_input_grad(w: &[f32], dy: &[f32], g: &ConvGeometry) -> Vec<f32> {
        let [batch, cin, h, wd] = g.input;
        let [cout, cg, kh, kw] = g.weight;
        let [ho, wo] = g.output_size();
        let per_group = cout / g.params.groups;
        let mut dx = vec![0.0f64; batch * cin * h * wd];
        for n in 0..batch {
            for o in 0..cout {
                let group = o / per_group;
                for oh in 0..ho {
                    for ow in 0..wo {
                        let d = dy[((n * cout + o) * ho + oh) * wo + ow] as f64;
                        for c in 0..cg {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let yy = (oh * g.params.stride[0] + i) as isize
                                        - g.params.padding[0] as isize;
                                    let xx = (ow * g.params.stride[1] + j) as isize
                                        - g.params.padding[1] as isize;
                                    if yy < 0 || xx < 0 || yy >= h as isize || xx >= wd as isize {
                                        continue;
                                    }
                                    dx[((n * cin + group * cg + c) * h + yy as usize) * wd
                                        + xx as usize] +=
                                        d * w[((o * cg + c) * kh + i) * kw + j] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        dx.into_iter().map(|v| v as f32).collect()
    }

    /// An f32 im2col convolution's geometry.
    fn im2col_geometry(
        input: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
        groups: usize,
    ) -> ConvGeometry {
        ConvGeometry {
            input,
            weight,
            params: ConvParams {
                stride,
                padding,
                groups,
                bf16: false,
                winograd: false,
            },
        }
    }

    #[test]
    fn forward_and_both_gradients_match_the_definition_with_groups_stride_and_padding() {
        for geometry in [
            // conv2-like: two towers, 5x5, padding 2.
            im2col_geometry([3, 4, 7, 6], [6, 2, 5, 5], [1, 1], [2, 2], 2),
            // conv1-like: stride 4, no padding, uneven fit.
            im2col_geometry([2, 3, 15, 13], [4, 3, 3, 5], [4, 3], [0, 1], 1),
            // Stride 1 with a 3x5 kernel and unequal padding.
            im2col_geometry([2, 3, 8, 9], [5, 3, 3, 5], [1, 1], [0, 1], 1),
            // Lines longer than one vector of 16 (col2im's masked chunks), and exactly 16.
            im2col_geometry([2, 2, 4, 37], [3, 2, 3, 5], [2, 1], [1, 2], 1),
            im2col_geometry([1, 2, 3, 16], [2, 2, 3, 3], [1, 1], [1, 1], 1),
        ] {
            let [ho, wo] = geometry.output_size();
            let x = values(geometry.input.iter().product(), 1);
            let dy = values(geometry.input[0] * geometry.weight[0] * ho * wo, 2);
            let w = values(geometry.weight.iter().product(), 3);
            let b = values(geometry.weight[0], 4);
            let forward = conv2d_forward(&x, &w, &b, &geometry);
            let expected = direct_forward(&x, &w, &b, &geometry);
            assert_eq!(forward.len(), expected.len());
            for (i, (a, e)) in forward.iter().zip(&expected).enumerate() {
                assert!(
                    (a - e).abs() < 1e-4 * (1.0 + e.abs()),
                    "{geometry:?} y[{i}]: {a} vs {e}"
                );
            }
            let expected = direct_input_grad(&w, &dy, &geometry);
            let mut input_grads = vec![("scattered", conv2d_input_grad(&w, &dy, &geometry))];
            // Where the stride is 1, also as the forward pass of the flipped convolution.
            if let Some((filters, transposed)) = flipped(&w, &geometry) {
                assert_eq!(
                    transposed.output_size(),
                    [geometry.input[2], geometry.input[3]]
                );
                let zeros = vec![0.0; transposed.weight[0]];
                let grad = conv2d_forward(&dy, &filters, &zeros, &transposed);
                input_grads.push(("flipped", grad));
            }
            assert_eq!(
                input_grads.len(),
                1 + usize::from(geometry.params.stride == [1, 1])
            );
            for (way, input_grad) in input_grads {
                assert_eq!(input_grad.len(), expected.len());
                for (i, (a, e)) in input_grad.iter().zip(&expected).enumerate() {
                    assert!(
                        (a - e).abs() < 1e-4 * (1.0 + e.abs()),
                        "{geometry:?} {way} dx[{i}]: {a} vs {e}"
                    );
                }
            }
            let fast = conv2d_weight_grad(&x, &dy, &geometry);
            let slow = direct(&x, &dy, &geometry);
            assert_eq!(fast.len(), slow.len());
            for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                assert!(
                    (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                    "{geometry:?} [{i}]: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn bf16_products_equal_the_definition_on_bf16_rounded_operands() {
        if !crate::bf16_gemm::available() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        // Towers and a stride of 2 (im2col's strided copy); stride 1 with padding on every side,
        // rows of up to 32 values (one masked store each) and of more (the plain copy); a lone
        // image, whose im2col is shared among threads.
        for (input, weight, stride, padding, groups) in [
            ([3, 4, 9, 8], [6, 2, 5, 5], [1, 2], [2, 1], 2),
            ([2, 3, 7, 9], [4, 3, 3, 5], [1, 1], [1, 2], 1),
            ([2, 2, 5, 37], [3, 2, 3, 3], [1, 1], [1, 1], 1),
            ([1, 3, 6, 6], [5, 3, 3, 3], [1, 1], [1, 1], 1),
        ] {
            let params = ConvParams {
                stride,
                padding,
                groups,
                bf16: true,
                winograd: false,
            };
            bf16_passes_equal_the_definition(ConvGeometry {
                input,
                weight,
                params,
            });
        }
    }

    fn bf16_passes_equal_the_definition(geometry: ConvGeometry) {
        use crate::bf16_gemm::{from_bf16, to_bf16};
        let round = |v: &[f32]| -> Vec<f32> { v.iter().map(|x| from_bf16(to_bf16(*x))).collect() };
        let [ho, wo] = geometry.output_size();
        let x = values(geometry.input.iter().product(), 1);
        let w = values(geometry.weight.iter().product(), 3);
        let b = values(geometry.weight[0], 4);
        let dy = values(geometry.input[0] * geometry.weight[0] * ho * wo, 2);
        let close = |what: &str, got: Vec<f32>, want: Vec<f32>| {
            assert_eq!(got.len(), want.len());
            for (i, (a, e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - e).abs() < 1e-4 * (1.0 + e.abs()),
                    "{geometry:?} {what}[{i}]: {a} vs {e}"
                );
            }
        };
        close(
            "y",
            conv2d_forward(&x, &w, &b, &geometry),
            direct_forward(&round(&x), &round(&w), &b, &geometry),
        );
        close(
            "dx",
            conv2d_input_grad(&w, &dy, &geometry),
            direct_input_grad(&round(&w), &round(&dy), &geometry),
        );
        close(
            "dw",
            conv2d_weight_grad(&x, &dy, &geometry),
            direct(&round(&x), &round(&dy), &geometry),
        );
        // And the rounding is real: f32 products differ from these.
        let exact = direct_forward(&x, &w, &b, &geometry);
        let rounded = conv2d_forward(&x, &w, &b, &geometry);
        assert!(
            exact
                .iter()
                .zip(&rounded)
                .any(|(a, b)| (a - b).abs() > 1e-3),
            "{geometry:?}: f32 and bf16 the same"
        );
    }
}
