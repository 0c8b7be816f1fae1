//! Our elementwise loops (pooling, response normalization) compiled for the widest vector
//! instructions the CPU has. The build targets plain x86-64, whose vectors are SSE's four floats,
//! and the compiler left pool1's loops scalar there (`perf annotate`: `cmpunordss`, branches);
//! compiled for AVX-512 they are 16 floats an instruction. The CPU is asked once per call.

/// Runs `work` compiled for AVX-512 (x86-64-v4) or else AVX2 with FMA (v3) where this CPU has
/// them, and as built elsewhere. What `work` calls must be inlined into it to share the
/// instructions: mark the kernel's own functions `#[inline(always)]`.
#[inline(always)]
pub fn vectorized<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(simd) = pulp::x86::V4::try_new() {
            return simd.vectorize(work);
        }
        if let Some(simd) = pulp::x86::V3::try_new() {
            return simd.vectorize(work);
        }
    }
    work()
}
