// Goose CUDA kernels for RWKV-7 inference. Compiled at run time with NVRTC
// (no CUDA headers are included). Activations and the WKV state are fp32;
// weights stay in their file dtype (DT: 0 = f32, 1 = f16, 2 = bf16, 4 =
// int8 with per-output-channel scales, the numbering of kernels.DType) and
// are widened to fp32 as they are read.
// All accumulation is fp32.

typedef unsigned short u16;
typedef unsigned int u32;

// ---------------------------------------------------------------- helpers

__device__ __forceinline__ float bf16_to_f32(u32 h) { return __uint_as_float(h << 16); }

__device__ __forceinline__ float f16_to_f32(u32 h) {
    float f;
    unsigned short s = (unsigned short)h;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(s));
    return f;
}

// Round to nearest even; NaN stays NaN.
__device__ __forceinline__ u16 f32_to_bf16(float f) {
    u32 u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (u16)(u >> 16);
}

__device__ __forceinline__ u16 f32_to_f16(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

// One element of a weight matrix (DT 4: int8, unscaled).
template <int DT>
__device__ __forceinline__ float wload(const void* w, long long i) {
    if constexpr (DT == 0) {
        return __ldg((const float*)w + i);
    } else if constexpr (DT == 4) {
        return (float)__ldg((const signed char*)w + i);
    } else {
        u32 h = __ldg((const u16*)w + i);
        return DT == 1 ? f16_to_f32(h) : bf16_to_f32(h);
    }
}

// The four int8 values packed in u, low byte first, as floats.
__device__ __forceinline__ void unpack4_i8(u32 u, float* o) {
    o[0] = (float)((int)(u << 24) >> 24);
    o[1] = (float)((int)(u << 16) >> 24);
    o[2] = (float)((int)(u << 8) >> 24);
    o[3] = (float)((int)u >> 24);
}

// Two halves packed in a u32, low half first.
template <int DT>
__device__ __forceinline__ void unpack2(u32 u, float& a, float& b) {
    if (DT == 2) {
        a = __uint_as_float(u << 16);
        b = __uint_as_float(u & 0xffff0000u);
    } else {
        a = f16_to_f32(u & 0xffffu);
        b = f16_to_f32(u >> 16);
    }
}

// Eight consecutive weights, loaded raw (wraw_load) and widened later
// (wraw_cvt), so that several loads can be in flight before the first use.
// The address must be 16-byte aligned.
// Int8 weights (DT 4) take 8 bytes, so their address must be 8-byte aligned.
template <int DT>
struct WRaw {
    uint4 u[DT == 0 ? 2 : 1];
};
template <>
struct WRaw<4> {
    uint2 v;
};

template <int DT>
__device__ __forceinline__ void wraw_load(WRaw<DT>& r, const void* w, long long i) {
    if constexpr (DT == 4) {
        r.v = __ldg((const uint2*)((const signed char*)w + i));
    } else if constexpr (DT == 0) {
        const uint4* p = (const uint4*)((const float*)w + i);
        r.u[0] = __ldg(p);
        r.u[DT == 0 ? 1 : 0] = __ldg(p + 1);
    } else {
        r.u[0] = __ldg((const uint4*)((const u16*)w + i));
    }
}

template <int DT>
__device__ __forceinline__ void wraw_cvt(const WRaw<DT>& r, float* o) {
    if constexpr (DT == 4) {
        unpack4_i8(r.v.x, o);
        unpack4_i8(r.v.y, o + 4);
    } else if constexpr (DT == 0) {
        uint4 a = r.u[0], b = r.u[DT == 0 ? 1 : 0];
        o[0] = __uint_as_float(a.x); o[1] = __uint_as_float(a.y);
        o[2] = __uint_as_float(a.z); o[3] = __uint_as_float(a.w);
        o[4] = __uint_as_float(b.x); o[5] = __uint_as_float(b.y);
        o[6] = __uint_as_float(b.z); o[7] = __uint_as_float(b.w);
    } else {
        unpack2<DT>(r.u[0].x, o[0], o[1]);
        unpack2<DT>(r.u[0].y, o[2], o[3]);
        unpack2<DT>(r.u[0].z, o[4], o[5]);
        unpack2<DT>(r.u[0].w, o[6], o[7]);
    }
}

template <int DT>
__device__ __forceinline__ void wload8(const void* w, long long i, float* o) {
    WRaw<DT> r;
    wraw_load<DT>(r, w, i);
    wraw_cvt<DT>(r, o);
}

// acc[t] += Σ_{j<8} wv[j]·x[t][k+j] for NT tokens (x rows K apart, 16-byte aligned).
template <int NT>
__device__ __forceinline__ void dot8(float* acc, const float* wv, const float* __restrict__ x, int K, int k) {
#pragma unroll
    for (int t = 0; t < NT; t++) {
        const float4* xp = (const float4*)(x + (long long)t * K + k);
        float4 a = xp[0], b = xp[1];
        acc[t] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w +
                  wv[4] * b.x + wv[5] * b.y + wv[6] * b.z + wv[7] * b.w;
    }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024). Every
// thread gets the same value, summed in the same order.
__device__ __forceinline__ float block_sum(float v, float* sh) {
    v = warp_sum(v);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads();
    if (l == 0) sh[w] = v;
    __syncthreads();
    float s = 0.0f;
    for (int i = 0; i < nw; i++) s += sh[i];
    return s;
}

// ---------------------------------------------------------------- GEMV
// Linear for a few tokens: dst[t][n] = Σ_k x[t][k]·w[n][k]. One warp per
// output row; NT tokens share each weight load. vec: K % 8 == 0 and w, x
// 16-byte aligned, so weights are read 16 bytes at a time.
template <int DT, int NT>
__device__ __forceinline__ void gemv_body(float* __restrict__ dst, const float* __restrict__ x,
                                          const void* __restrict__ w, int N, int K, int vec,
                                          const float* __restrict__ scale) {
    int n = (int)((blockIdx.x * (unsigned)blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (n >= N) return;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    long long row = (long long)n * K;
    if (vec) {
        // A warp covers 256 elements per round; up to eight rounds of loads
        // are issued before any is used (a bf16 row of 2048 in one go).
        for (int k0 = lane * 8; k0 < K; k0 += 8 * 256) {
            WRaw<DT> q[8];
#pragma unroll
            for (int u = 0; u < 8; u++)
                if (k0 + u * 256 < K) wraw_load<DT>(q[u], w, row + k0 + u * 256);
#pragma unroll
            for (int u = 0; u < 8; u++)
                if (k0 + u * 256 < K) {
                    float wv[8];
                    wraw_cvt<DT>(q[u], wv);
                    dot8<NT>(acc, wv, x, K, k0 + u * 256);
                }
        }
    } else {
        for (int k = lane; k < K; k += 32) {
            float wv = wload<DT>(w, row + k);
#pragma unroll
            for (int t = 0; t < NT; t++) acc[t] += wv * x[(long long)t * K + k];
        }
    }
    float sc = scale ? scale[n] : 1.0f;
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float s = warp_sum(acc[t]);
        if (lane == 0) dst[(long long)t * N + n] = scale ? s * sc : s;
    }
}

// scale: per-row scales of an int8 weight (null for float weights).
#define GEMV(NAME, DT, NT)                                                                      \
    extern "C" __global__ void __launch_bounds__(256)                                          \
        NAME(float* dst, const float* x, const void* w, int N, int K, int vec, const float* scale) { \
        gemv_body<DT, NT>(dst, x, w, N, K, vec, scale);                                        \
    }
GEMV(gemv_f32_1, 0, 1) GEMV(gemv_f32_2, 0, 2) GEMV(gemv_f32_3, 0, 3) GEMV(gemv_f32_4, 0, 4)
GEMV(gemv_f16_1, 1, 1) GEMV(gemv_f16_2, 1, 2) GEMV(gemv_f16_3, 1, 3) GEMV(gemv_f16_4, 1, 4)
GEMV(gemv_bf16_1, 2, 1) GEMV(gemv_bf16_2, 2, 2) GEMV(gemv_bf16_3, 2, 3) GEMV(gemv_bf16_4, 2, 4)

// ---------------------------------------------------------------- vector × matrix
// MatMul for a few tokens: dst[t][n] = Σ_k x[t][k]·w[k][n], w row-major
// [K, N]. A block has 256 threads: 8 column groups of 8 columns (64
// columns) × 32 k lanes, and covers rows [blockIdx.y·kchunk, +kchunk). With
// several k chunks each block writes its partial sums to
// part[blockIdx.y][t][n] and mm_reduce adds them in order.
template <int DT, int NT>
__device__ __forceinline__ void mm_body(float* __restrict__ dst, const float* __restrict__ x,
                                        const void* __restrict__ w, int N, int K, int kchunk,
                                        float* __restrict__ part, int vec) {
    __shared__ float sh[8][NT][64];
    int cg = threadIdx.x & 7, kl = threadIdx.x >> 3;
    int n0 = blockIdx.x * 64 + cg * 8;
    int k0 = blockIdx.y * kchunk;
    int k1 = min(K, k0 + kchunk);
    float acc[NT][8];
#pragma unroll
    for (int t = 0; t < NT; t++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[t][j] = 0.0f;
    bool full = vec && n0 + 8 <= N;
#pragma unroll 4
    for (int k = k0 + kl; k < k1; k += 32) {
        float wv[8];
        long long base = (long long)k * N + n0;
        if (full) {
            wload8<DT>(w, base, wv);
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++) wv[j] = (n0 + j < N) ? wload<DT>(w, base + j) : 0.0f;
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float xv = x[(long long)t * K + k];
#pragma unroll
            for (int j = 0; j < 8; j++) acc[t][j] += xv * wv[j];
        }
    }
    // Lanes of a warp are cg + 8·(kl mod 4): reduce over the 4 k lanes of
    // each warp, then over the 8 warps through shared memory.
    int warp = threadIdx.x >> 5;
#pragma unroll
    for (int t = 0; t < NT; t++)
#pragma unroll
        for (int j = 0; j < 8; j++) {
            float v = acc[t][j];
            v += __shfl_xor_sync(0xffffffffu, v, 8);
            v += __shfl_xor_sync(0xffffffffu, v, 16);
            acc[t][j] = v;
        }
    if ((threadIdx.x & 31) < 8) {
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int j = 0; j < 8; j++) sh[warp][t][cg * 8 + j] = acc[t][j];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < NT * 64; i += blockDim.x) {
        int t = i >> 6, c = i & 63;
        int n = blockIdx.x * 64 + c;
        if (n >= N) continue;
        float s = 0.0f;
#pragma unroll
        for (int q = 0; q < 8; q++) s += sh[q][t][c];
        if (gridDim.y == 1)
            dst[(long long)t * N + n] = s;
        else
            part[((long long)blockIdx.y * NT + t) * N + n] = s;
    }
}

#define MM(NAME, DT, NT)                                                                        \
    extern "C" __global__ void __launch_bounds__(256) NAME(float* dst, const float* x,         \
                                                           const void* w, int N, int K,         \
                                                           int kchunk, float* part, int vec) { \
        mm_body<DT, NT>(dst, x, w, N, K, kchunk, part, vec);                                   \
    }
MM(mm_f32_1, 0, 1) MM(mm_f32_2, 0, 2) MM(mm_f32_3, 0, 3) MM(mm_f32_4, 0, 4)
MM(mm_f16_1, 1, 1) MM(mm_f16_2, 1, 2) MM(mm_f16_3, 1, 3) MM(mm_f16_4, 1, 4)
MM(mm_bf16_1, 2, 1) MM(mm_bf16_2, 2, 2) MM(mm_bf16_3, 2, 3) MM(mm_bf16_4, 2, 4)

// dst[i] = Σ_s part[s][i] for i < n (n = tokens·N), in order of s.
extern "C" __global__ void mm_reduce(float* dst, const float* part, int n, int splits) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float s = 0.0f;
    for (int q = 0; q < splits; q++) s += part[(long long)q * n + i];
    dst[i] = s;
}

// ---------------------------------------------------------------- conversions
// Activations split for cuBLAS into a weight-dtype pair: hi = round(x),
// lo = round(x − hi), so that hi + lo = x to ~2⁻¹⁷ (bf16) relative; with
// lo null, only the rounded hi (LinearItem.Round).
extern "C" __global__ void split_f32_f16(u16* hi, u16* lo, const float* src, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float x = src[i];
        u16 h = f32_to_f16(x);
        hi[i] = h;
        if (lo) lo[i] = f32_to_f16(x - f16_to_f32(h));
    }
}
extern "C" __global__ void split_f32_bf16(u16* hi, u16* lo, const float* src, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float x = src[i];
        u16 h = f32_to_bf16(x);
        hi[i] = h;
        if (lo) lo[i] = f32_to_bf16(x - bf16_to_f32(h));
    }
}

// ---------------------------------------------------------------- element-wise
// f: 0 tanh, 1 sigmoid, 2 relu² (kernels.Activation).
extern "C" __global__ void act(float* dst, const float* x, int n, int f) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float v = x[i], r;
        if (f == 0)
            r = tanhf(v);
        else if (f == 1)
            r = sigmoidf_(v);
        else {
            r = v > 0.0f ? v : 0.0f;
            r = r * r;
        }
        dst[i] = r;
    }
}

// dst = a + b (op 0) or a ⊙ b (op 1); bcols > 0: b is one row of bcols
// elements broadcast over the rows of a.
extern "C" __global__ void binop(float* dst, const float* a, const float* b, int n, int bcols, int op) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float bv = bcols > 0 ? b[i % bcols] : b[i];
        dst[i] = op == 0 ? a[i] + bv : a[i] * bv;
    }
}

// ---------------------------------------------------------------- LayerNorm
// row_stats sets the mean of the C values of xr and inv = 1/√(var + eps),
// every thread of the block the same values: the one computation of
// LayerNorm's statistics (layernorm, normshiftmix and normshift_rows agree
// to the bit because they share it). Unrolled so that a thread's loads of
// xr are in flight together; the sums keep their order.
__device__ __forceinline__ void row_stats(const float* xr, int C, float eps, float* sh, float& mean, float& inv) {
    float s = 0.0f;
#pragma unroll 8
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += xr[c];
    mean = block_sum(s, sh) / (float)C;
    float q = 0.0f;
#pragma unroll 8
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float d = xr[c] - mean;
        q += d * d;
    }
    float var = block_sum(q, sh) / (float)C;
    inv = 1.0f / sqrtf(var + eps);
}

extern "C" __global__ void __launch_bounds__(256)
    layernorm(float* dst, const float* x, const float* w, const float* b, int C, float eps) {
    __shared__ float sh[32];
    const float* xr = x + (long long)blockIdx.x * C;
    float* dr = dst + (long long)blockIdx.x * C;
    float mean, inv;
    row_stats(xr, C, eps, sh, mean, inv);
    if (w)
        for (int c = threadIdx.x; c < C; c += blockDim.x) dr[c] = (xr[c] - mean) * inv * w[c] + b[c];
    else
        for (int c = threadIdx.x; c < C; c += blockDim.x) dr[c] = (xr[c] - mean) * inv;
}

// ---------------------------------------------------------------- ShiftMix
struct MixArgs {
    float* dst[8];
    const float* mix[8];
};

// dst[m][t][c] = x[t][c] + (prev[t][c] − x[t][c])·mix[m][c] with prev[0] =
// state and prev[t] = x[t−1]; then state = x[T−1]. The thread of (t=0, c)
// is the only one that reads state[c], and it writes it after reading.
extern "C" __global__ void shiftmix(MixArgs m, int nmix, const float* x, float* state, int T, int C) {
    long long n = (long long)T * C;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        int t = (int)(i / C), c = (int)(i % C);
        float xv = x[i];
        float prev = t == 0 ? state[c] : x[i - C];
        float d = prev - xv;
        for (int j = 0; j < nmix; j++) m.dst[j][i] = xv + d * m.mix[j][c];
        if (t == 0) state[c] = x[(long long)(T - 1) * C + c];
    }
}

// ---------------------------------------------------------------- Embed
// dst[t] = table[ids[t]] as fp32; ids out of [0, V) give zeros.
template <int DT>
__device__ __forceinline__ void embed_body(float* dst, const void* table, const int* ids, int V, int C) {
    int t = blockIdx.x;
    int id = ids[t];
    float* d = dst + (long long)t * C;
    for (int c = blockIdx.y * blockDim.x + threadIdx.x; c < C; c += gridDim.y * blockDim.x)
        d[c] = (id >= 0 && id < V) ? wload<DT>(table, (long long)id * C + c) : 0.0f;
}
extern "C" __global__ void embed_f32(float* d, const void* t, const int* ids, int V, int C) { embed_body<0>(d, t, ids, V, C); }
extern "C" __global__ void embed_f16(float* d, const void* t, const int* ids, int V, int C) { embed_body<1>(d, t, ids, V, C); }
extern "C" __global__ void embed_bf16(float* d, const void* t, const int* ids, int V, int C) { embed_body<2>(d, t, ids, V, C); }

// ---------------------------------------------------------------- Prep7
// One block of head-size threads per (token, head): grid (T, H).
extern "C" __global__ void prep7(float* K, float* V, float* VF, const float* ZV, float* W, float* A, float* B,
                                 const float* W0, const float* A0, const float* V0, const float* KK,
                                 const float* KA, int C, int hasZV) {
    __shared__ float sh[32];
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    long long i = (long long)blockIdx.x * C + c;
    float k = K[i];
    float kk = k * KK[c];
    float ss = block_sum(kk * kk, sh);
    float nrm = fmaxf(sqrtf(ss), 1e-12f);
    float kh = kk / nrm;
    float alpha = sigmoidf_(A0[c] + A[i]);
    W[i] = expf(-0.6065306597126334f * sigmoidf_(W0[c] + W[i]));
    A[i] = -kh;
    B[i] = kh * alpha;
    K[i] = k * (1.0f + (alpha - 1.0f) * KA[c]);
    float v = V[i];
    if (hasZV)
        V[i] = v + (VF[i] - v) * sigmoidf_(V0[c] + ZV[i]);
    else
        VF[i] = v;
}

// ---------------------------------------------------------------- Out7
// Per (token, head): dst = (GroupNorm(y) + (Σ r·k·rk)·v) ⊙ g. Grid (T, H).
extern "C" __global__ void out7(float* D, const float* Y, const float* R, const float* K, const float* V,
                                const float* G, const float* RK, const float* LW, const float* LB, int C,
                                float eps) {
    __shared__ float sh[32];
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    long long i = (long long)blockIdx.x * C + c;
    float n = (float)blockDim.x;
    float y = Y[i];
    float mean = block_sum(y, sh) / n;
    float d = y - mean;
    float var = block_sum(d * d, sh) / n;
    float bonus = block_sum(R[i] * K[i] * RK[c], sh);
    float yn = d * (1.0f / sqrtf(var + eps)) * LW[c] + LB[c];
    D[i] = (yn + bonus * V[i]) * G[i];
}

// ---------------------------------------------------------------- WKV7
// One block per head with TPR (4, 8 or 16) threads per state row i (value
// index), each keeping 64/TPR of the row's entries in registers (float4
// groups q, q+TPR, ..., so a warp's shared-memory reads hit distinct
// banks). For each token in order:
//   sa = Σ_j a_j·S_ij ; S_ij = S_ij·w_j + k_j·v_i + sa·b_j ; y_i = Σ_j S_ij·r_j
// with the two sums finished by shuffles among the row's TPR threads.
// Inputs arrive in chunks of WCH tokens copied to shared memory with
// cp.async one chunk ahead, so global latency is hidden and there are two
// barriers per chunk rather than per token.
#define WCH 8

__device__ __forceinline__ unsigned smem_addr(const void* p) {
    unsigned a;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
    return a;
}
__device__ __forceinline__ void cp_async16(void* s, const void* g) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_addr(s)), "l"(g) : "memory");
}
__device__ __forceinline__ void cp_async4(void* s, const void* g) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(smem_addr(s)), "l"(g) : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void cp_wait_all_but1() { asm volatile("cp.async.wait_group 1;" ::: "memory"); }
__device__ __forceinline__ void cp_wait_all() { asm volatile("cp.async.wait_group 0;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_wait_n() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }

struct WKVIn {
    const float* p[6];  // r, w, k, a, b, v
};

// Queue the copy of tokens [t0, t0+WCH) ∩ [0, T) of head h into dst.
__device__ __forceinline__ void wkv_load(float4 (*dst)[WCH][16], const WKVIn& in, int t0, int T, int C,
                                         long long hoff, int vec) {
    if (vec) {
        for (int q = threadIdx.x; q < 6 * WCH * 16; q += blockDim.x) {
            int arr = q / (WCH * 16), rem = q % (WCH * 16), tt = rem >> 4, f = rem & 15;
            int t = t0 + tt;
            if (t < T) cp_async16(&dst[arr][tt][f], in.p[arr] + (long long)t * C + hoff + 4 * f);
        }
    } else {
        for (int q = threadIdx.x; q < 6 * WCH * 64; q += blockDim.x) {
            int arr = q / (WCH * 64), rem = q % (WCH * 64), tt = rem >> 6, e = rem & 63;
            int t = t0 + tt;
            if (t < T) cp_async4((float*)dst[arr][tt] + e, in.p[arr] + (long long)t * C + hoff + e);
        }
    }
    cp_commit();
}

// wkv_seq returns the inputs moved by off elements: a batched launch runs
// sequence blockIdx.z (sequences of T rows one after another, one state
// each; z = 0 for a single sequence) at offset z·T·C of y and the inputs
// and z·C·64 of the states.
__device__ __forceinline__ WKVIn wkv_seq(const WKVIn& in0, long long off) {
    WKVIn in = in0;
#pragma unroll
    for (int k = 0; k < 6; k++) in.p[k] += off;
    return in;
}

// wkv_row advances one token for the 4·G elements of a state row that this
// thread holds (float4 groups q, q+TPR, …; the row's TPR threads are
// adjacent lanes) and returns the row's output y_i = Σ_j S_ij·r_j:
//   sa = Σ_j a_j·S_ij (old state);  S_ij = S_ij·w_j + k_j·v_i + sa·b_j.
template <int TPR>
__device__ __forceinline__ float wkv_row(float* S, const float4* R4, const float4* W4, const float4* K4,
                                         const float4* A4, const float4* B4, float vi, int q) {
    const int G = 16 / TPR;
    float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
#pragma unroll
    for (int m = 0; m < G; m++) {
        float4 a4 = A4[q + TPR * m];
        d0 += a4.x * S[4 * m];
        d1 += a4.y * S[4 * m + 1];
        d2 += a4.z * S[4 * m + 2];
        d3 += a4.w * S[4 * m + 3];
    }
    float sa = (d0 + d1) + (d2 + d3);
#pragma unroll
    for (int o = 1; o < TPR; o <<= 1) sa += __shfl_xor_sync(0xffffffffu, sa, o);
    float e0 = 0.0f, e1 = 0.0f, e2 = 0.0f, e3 = 0.0f;
#pragma unroll
    for (int m = 0; m < G; m++) {
        int g = q + TPR * m;
        float4 ww = W4[g], kk = K4[g], bb = B4[g], rr = R4[g];
        S[4 * m] = S[4 * m] * ww.x + kk.x * vi + sa * bb.x;
        S[4 * m + 1] = S[4 * m + 1] * ww.y + kk.y * vi + sa * bb.y;
        S[4 * m + 2] = S[4 * m + 2] * ww.z + kk.z * vi + sa * bb.z;
        S[4 * m + 3] = S[4 * m + 3] * ww.w + kk.w * vi + sa * bb.w;
        e0 += S[4 * m] * rr.x;
        e1 += S[4 * m + 1] * rr.y;
        e2 += S[4 * m + 2] * rr.z;
        e3 += S[4 * m + 3] * rr.w;
    }
    float yy = (e0 + e1) + (e2 + e3);
#pragma unroll
    for (int o = 1; o < TPR; o <<= 1) yy += __shfl_xor_sync(0xffffffffu, yy, o);
    return yy;
}

// TPR threads per state row, each holding G = 16/TPR float4 groups
// (q, q+TPR, ...) of the row; the block has 64·TPR threads.
template <int TPR>
__device__ __forceinline__ void wkv7_body(float* __restrict__ y, float* __restrict__ s, const WKVIn& in0, int T,
                                          int C, int vec) {
    const int G = 16 / TPR;
    __shared__ float4 buf[2][6][WCH][16];
    long long soff = (long long)blockIdx.z * T * C;
    WKVIn in = wkv_seq(in0, soff);
    y += soff;
    s += (long long)blockIdx.z * C * 64;
    int h = blockIdx.x, i = threadIdx.x / TPR, q = threadIdx.x % TPR;
    long long hoff = (long long)h * 64;
    float* srow = s + (hoff + i) * 64;
    float S[4 * G];
#pragma unroll
    for (int m = 0; m < G; m++) {
        float4 v4 = *(const float4*)(srow + 4 * (q + TPR * m));
        S[4 * m] = v4.x; S[4 * m + 1] = v4.y; S[4 * m + 2] = v4.z; S[4 * m + 3] = v4.w;
    }
    int nch = (T + WCH - 1) / WCH;
    if (nch > 0) wkv_load(buf[0], in, 0, T, C, hoff, vec);
    for (int c = 0; c < nch; c++) {
        int st = c & 1;
        if (c + 1 < nch) {
            wkv_load(buf[st ^ 1], in, (c + 1) * WCH, T, C, hoff, vec);
            cp_wait_all_but1();
        } else {
            cp_wait_all();
        }
        __syncthreads();
        int n = min(WCH, T - c * WCH);
        for (int tt = 0; tt < n; tt++) {
            const float4* R4 = buf[st][0][tt];
            const float4* W4 = buf[st][1][tt];
            const float4* K4 = buf[st][2][tt];
            const float4* A4 = buf[st][3][tt];
            const float4* B4 = buf[st][4][tt];
            float vi = ((const float*)buf[st][5][tt])[i];
            float yy = wkv_row<TPR>(S, R4, W4, K4, A4, B4, vi, q);
            if (q == 0) y[(long long)(c * WCH + tt) * C + hoff + i] = yy;
        }
        __syncthreads();
    }
#pragma unroll
    for (int m = 0; m < G; m++)
        *(float4*)(srow + 4 * (q + TPR * m)) = make_float4(S[4 * m], S[4 * m + 1], S[4 * m + 2], S[4 * m + 3]);
}

#define WKV(TPR)                                                                                              \
    extern "C" __global__ void __launch_bounds__(64 * TPR)                                                    \
        wkv7_##TPR(float* __restrict__ y, float* __restrict__ s, WKVIn in, int T, int C, int vec) {           \
        wkv7_body<TPR>(y, s, in, T, C, vec);                                                                  \
    }
WKV(4) WKV(8) WKV(16)

// ---------------------------------------------------------------- WKV7, rows split over blocks
// The rows of a head's state evolve independently (row i needs only v_i
// and its own S·a), so a head can be spread over several blocks, giving
// the GPU more warps than the one-block-per-head kernel (whose per-token
// chain of dependent instructions leaves most schedulers idle). A block of
// 32·NW threads covers RB = 32·NW/TPR rows of one head, TPR threads per
// row as in wkv7_body; grid (H, 64/RB). Inputs are staged in NST chunk
// buffers, NST−1 chunks loaded ahead.
template <int TPR, int NW, int NST>
__device__ __forceinline__ void wkv7g_body(float* __restrict__ y, float* __restrict__ s, const WKVIn& in0, int T,
                                           int C, int vec) {
    const int G = 16 / TPR, RB = 32 * NW / TPR;
    __shared__ float4 buf[NST][6][WCH][16];
    long long soff = (long long)blockIdx.z * T * C;
    WKVIn in = wkv_seq(in0, soff);
    y += soff;
    s += (long long)blockIdx.z * C * 64;
    int h = blockIdx.x, i = blockIdx.y * RB + threadIdx.x / TPR, q = threadIdx.x % TPR;
    long long hoff = (long long)h * 64;
    float* srow = s + (hoff + i) * 64;
    float S[4 * G];
#pragma unroll
    for (int m = 0; m < G; m++) {
        float4 v4 = *(const float4*)(srow + 4 * (q + TPR * m));
        S[4 * m] = v4.x; S[4 * m + 1] = v4.y; S[4 * m + 2] = v4.z; S[4 * m + 3] = v4.w;
    }
    // Chunks past the end commit empty groups, so "at most NST−1 groups
    // pending" always means "chunk c has landed".
    int nch = (T + WCH - 1) / WCH;
#pragma unroll
    for (int p = 0; p < NST - 1; p++) wkv_load(buf[p], in, p * WCH, T, C, hoff, vec);
    for (int c = 0; c < nch; c++) {
        int st = c % NST;
        wkv_load(buf[(c + NST - 1) % NST], in, (c + NST - 1) * WCH, T, C, hoff, vec);
        cp_wait_n<NST - 1>();
        if (NW == 1) __syncwarp(); else __syncthreads();
        int n = min(WCH, T - c * WCH);
        for (int tt = 0; tt < n; tt++) {
            const float4* R4 = buf[st][0][tt];
            const float4* W4 = buf[st][1][tt];
            const float4* K4 = buf[st][2][tt];
            const float4* A4 = buf[st][3][tt];
            const float4* B4 = buf[st][4][tt];
            float vi = ((const float*)buf[st][5][tt])[i & 63];
            float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
#pragma unroll
            for (int m = 0; m < G; m++) {
                float4 a4 = A4[q + TPR * m];
                d0 += a4.x * S[4 * m];
                d1 += a4.y * S[4 * m + 1];
                d2 += a4.z * S[4 * m + 2];
                d3 += a4.w * S[4 * m + 3];
            }
            // S·w + k·v does not need sa: only one FMA per element waits
            // for the shuffles.
            float P[4 * G];
#pragma unroll
            for (int m = 0; m < G; m++) {
                int g = q + TPR * m;
                float4 ww = W4[g], kk = K4[g];
                P[4 * m] = S[4 * m] * ww.x + kk.x * vi;
                P[4 * m + 1] = S[4 * m + 1] * ww.y + kk.y * vi;
                P[4 * m + 2] = S[4 * m + 2] * ww.z + kk.z * vi;
                P[4 * m + 3] = S[4 * m + 3] * ww.w + kk.w * vi;
            }
            float sa = (d0 + d1) + (d2 + d3);
#pragma unroll
            for (int o = 1; o < TPR; o <<= 1) sa += __shfl_xor_sync(0xffffffffu, sa, o);
            float e0 = 0.0f, e1 = 0.0f, e2 = 0.0f, e3 = 0.0f;
#pragma unroll
            for (int m = 0; m < G; m++) {
                int g = q + TPR * m;
                float4 bb = B4[g], rr = R4[g];
                S[4 * m] = P[4 * m] + sa * bb.x;
                S[4 * m + 1] = P[4 * m + 1] + sa * bb.y;
                S[4 * m + 2] = P[4 * m + 2] + sa * bb.z;
                S[4 * m + 3] = P[4 * m + 3] + sa * bb.w;
                e0 += S[4 * m] * rr.x;
                e1 += S[4 * m + 1] * rr.y;
                e2 += S[4 * m + 2] * rr.z;
                e3 += S[4 * m + 3] * rr.w;
            }
            float yy = (e0 + e1) + (e2 + e3);
#pragma unroll
            for (int o = 1; o < TPR; o <<= 1) yy += __shfl_xor_sync(0xffffffffu, yy, o);
            if (q == 0) y[(long long)(c * WCH + tt) * C + hoff + i] = yy;
        }
        if (NW == 1) __syncwarp(); else __syncthreads();
    }
#pragma unroll
    for (int m = 0; m < G; m++)
        *(float4*)(srow + 4 * (q + TPR * m)) = make_float4(S[4 * m], S[4 * m + 1], S[4 * m + 2], S[4 * m + 3]);
}

#define WKVG(TPR, NW, NST)                                                                                    \
    extern "C" __global__ void __launch_bounds__(32 * NW) wkv7g_##TPR##_##NW##_##NST(                          \
        float* __restrict__ y, float* __restrict__ s, WKVIn in, int T, int C, int vec) {                      \
        wkv7g_body<TPR, NW, NST>(y, s, in, T, C, vec);                                                        \
    }
WKVG(4, 2, 4) WKVG(4, 4, 4) WKVG(4, 8, 3) WKVG(8, 4, 4) WKVG(8, 8, 3) WKVG(16, 4, 4) WKVG(16, 8, 3) WKVG(16, 16, 3)

// ================================================================ fused decode ops
// The kernels below are launched with programmatic dependent launch (PDL):
// they may start while the previous kernel is still running, so each one
// calls pdl_wait() before it reads anything earlier work wrote or writes
// anything earlier work reads (only weights, which never change, are read
// before). Every thread reaches pdl_wait(), so a kernel's completion implies
// its predecessor's. pdl_launch() lets the next kernel start launching.
__device__ __forceinline__ void pdl_wait() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

// f: -1 none, 0 tanh, 1 sigmoid, 2 relu² (kernels.Activation).
__device__ __forceinline__ float apply_act(float v, int f) {
    if (f == 0) return tanhf(v);
    if (f == 1) return sigmoidf_(v);
    if (f == 2) {
        float r = v > 0.0f ? v : 0.0f;
        return r * r;
    }
    return v;
}

// ---------------------------------------------------------------- LinearBatch (one token)
// Several independent vector-matrix products in one launch. Item i owns
// blocks [blk0, next item's blk0).
//   NT (mode 0): dst[n] (=|+=) f(Σ_k x[k]·w[n][k]), w [N, K]: each warp
//     computes kchunk consecutive rows (see lin_nt), 8 warps per block.
//   NN (mode 1): dst[n] (=|+=) f(Σ_k x[k]·w[k][n]), w [K, N]: a block covers
//     64 columns × kchunk rows (8 column groups × 32 k lanes, as mm_body);
//     with nsplit > 1 row slices, each block stores its partial sums in part
//     and the last block of a column slab to finish (counted in count, which
//     it resets) adds them in slice order, so the result is deterministic.
// Weights are 16-byte aligned and K (NT) or N (NN) a multiple of 8.
#define MAXITEMS 8
struct LinItem {
    float* dst;
    const float* x;
    const void* w;
    int N, K, mode, act, acc, blk0, kchunk, nsplit;
    float* part;
    unsigned* count;
    const float* scale; // per output channel of an int8 weight; null for float weights
};
struct LinBatch {
    LinItem it[MAXITEMS];
    int n;
};

__device__ __forceinline__ void store_out(float* d, float v, int f, int acc) {
    v = apply_act(v, f);
    if (acc)
        *d += v;
    else
        *d = v;
}

// The elements a lane takes per load of an NT row (LW), and a round's
// length (SEG = 8 loads of 32 lanes): 16-byte loads in either case, so
// that int8 rows keep as many bytes in flight as bf16 ones.
// One round of a warp's weight loads for an NT row: lane l takes the 8
// elements at k0 + 8l + 256u for u < 8 (2048 elements per round; 16 bytes
// a load for bf16, 8 for int8).
template <int DT>
__device__ __forceinline__ void nt_load(WRaw<DT> (&q)[8], const void* w, long long row, int k0, int K) {
#pragma unroll
    for (int u = 0; u < 8; u++)
        if (k0 + u * 256 < K) wraw_load<DT>(q[u], w, row + k0 + u * 256);
}
template <int DT>
__device__ __forceinline__ void nt_dot(const WRaw<DT> (&q)[8], const float* __restrict__ x, int k0, int K,
                                       float& acc) {
#pragma unroll
    for (int u = 0; u < 8; u++)
        if (k0 + u * 256 < K) {
            float wv[8];
            wraw_cvt<DT>(q[u], wv);
            dot8<1>(&acc, wv, x, K, k0 + u * 256);
        }
}

// A warp computes rows n0 .. n0+rpw−1 (rpw in kchunk), each in rounds of
// 2048 elements, loading round u+1 while it multiplies round u, so its
// loads stay in flight from the first to the last row.
template <int DT, class Wait>
__device__ __forceinline__ void lin_nt(const LinItem& it, int local, Wait wait) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int rpw = it.kchunk, K = it.K;
    int n0 = (local * 8 + warp) * rpw;
    constexpr int SEG = 2048, LW = 8;
    int nseg = (K + SEG - 1) / SEG;
    int U = max(0, min(rpw, it.N - n0)) * nseg;
    WRaw<DT> q0[8], q1[8];
    if (U > 0) nt_load<DT>(q0, it.w, (long long)n0 * K, lane * LW, K);
    const float* __restrict__ x = wait();
    if (U == 0) return;
    float acc = 0.0f;
    for (int u = 0; u < U; u += 2) {
        int r0 = u / nseg, s0 = u - r0 * nseg;
        int r1 = (u + 1) / nseg, s1 = u + 1 - r1 * nseg;
        if (u + 1 < U) nt_load<DT>(q1, it.w, (long long)(n0 + r1) * K, s1 * SEG + lane * LW, K);
        nt_dot<DT>(q0, x, s0 * SEG + lane * LW, K, acc);
        if (s0 == nseg - 1) {
            float v = warp_sum(acc);
            if (DT == 4) v *= it.scale[n0 + r0];
            if (lane == 0) store_out(it.dst + n0 + r0, v, it.act, it.acc);
            acc = 0.0f;
        }
        if (u + 2 < U) {
            int r2 = (u + 2) / nseg, s2 = u + 2 - r2 * nseg;
            nt_load<DT>(q0, it.w, (long long)(n0 + r2) * K, s2 * SEG + lane * LW, K);
        }
        if (u + 1 < U) {
            nt_dot<DT>(q1, x, s1 * SEG + lane * LW, K, acc);
            if (s1 == nseg - 1) {
                float v = warp_sum(acc);
                if (DT == 4) v *= it.scale[n0 + r1];
                if (lane == 0) store_out(it.dst + n0 + r1, v, it.act, it.acc);
                acc = 0.0f;
            }
        }
    }
}

template <int DT, class Wait>
__device__ __forceinline__ void lin_nn(const LinItem& it, int local, Wait wait) {
    __shared__ float sh[8][64];
    __shared__ int last;
    int N = it.N, K = it.K;
    int ncb = (N + 63) >> 6;
    int cb = local % ncb, split = local / ncb;
    int cg = threadIdx.x & 7, kl = threadIdx.x >> 3;
    int n0 = cb * 64 + cg * 8;
    int k0 = split * it.kchunk, k1 = min(K, k0 + it.kchunk);
    bool live = n0 < N;
    const int U = 4;
    WRaw<DT> q[U];
    int k = k0 + kl;
    if (live) {
#pragma unroll
        for (int u = 0; u < U; u++)
            if (k + 32 * u < k1) wraw_load<DT>(q[u], it.w, (long long)(k + 32 * u) * N + n0);
    }
    const float* __restrict__ x = wait();
    float acc[8];
#pragma unroll
    for (int j = 0; j < 8; j++) acc[j] = 0.0f;
    if (live) {
        for (;;) {
#pragma unroll
            for (int u = 0; u < U; u++)
                if (k + 32 * u < k1) {
                    float wv[8];
                    wraw_cvt<DT>(q[u], wv);
                    float xv = x[k + 32 * u];
#pragma unroll
                    for (int j = 0; j < 8; j++) acc[j] += xv * wv[j];
                }
            k += 32 * U;
            if (k >= k1) break;
#pragma unroll
            for (int u = 0; u < U; u++)
                if (k + 32 * u < k1) wraw_load<DT>(q[u], it.w, (long long)(k + 32 * u) * N + n0);
        }
    }
    int warp = threadIdx.x >> 5;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        float v = acc[j];
        v += __shfl_xor_sync(0xffffffffu, v, 8);
        v += __shfl_xor_sync(0xffffffffu, v, 16);
        acc[j] = v;
    }
    if ((threadIdx.x & 31) < 8) {
#pragma unroll
        for (int j = 0; j < 8; j++) sh[warp][cg * 8 + j] = acc[j];
    }
    __syncthreads();
    int n = cb * 64 + threadIdx.x;
    bool out = threadIdx.x < 64 && n < N;
    float s = 0.0f;
    if (out) {
#pragma unroll
        for (int w = 0; w < 8; w++) s += sh[w][threadIdx.x];
    }
    if (it.nsplit == 1) {
        if (out) store_out(it.dst + n, s, it.act, it.acc);
        return;
    }
    if (out) {
        it.part[(long long)split * N + n] = s;
        __threadfence();
    }
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&it.count[cb], 1u) == (unsigned)(it.nsplit - 1);
    __syncthreads();
    if (!last) return;
    __threadfence();
    if (out) {
        const volatile float* p = it.part;
        float t = 0.0f;
        for (int q2 = 0; q2 < it.nsplit; q2++) t += p[(long long)q2 * N + n];
        store_out(it.dst + n, t, it.act, it.acc);
    }
    if (threadIdx.x == 0) it.count[cb] = 0;
}

// DT is the dtype of the NT items' weights, DN that of the NN items'
// (int8 weights come with float LoRA matrices).
template <int DT, int DN>
__device__ __forceinline__ void linbatch_body(const LinBatch& B) {
    int bid = blockIdx.x;
    LinItem it = B.it[0];
#pragma unroll
    for (int j = 1; j < MAXITEMS; j++)
        if (j < B.n && bid >= B.it[j].blk0) it = B.it[j];
    pdl_launch();
    // Called by every thread once its first weights are in flight.
    auto wait = [&]() -> const float* {
        pdl_wait();
        return it.x;
    };
    if (it.mode == 0)
        lin_nt<DT>(it, bid - it.blk0, wait);
    else
        lin_nn<DN>(it, bid - it.blk0, wait);
}
// Two blocks per SM (at most 128 registers), so that a launch sized for
// that runs in one wave.
#define LINBATCH(NAME, DT, DN) \
    extern "C" __global__ void __launch_bounds__(256, 2) NAME(LinBatch B) { linbatch_body<DT, DN>(B); }
LINBATCH(linbatch_f32, 0, 0) LINBATCH(linbatch_f16, 1, 1) LINBATCH(linbatch_bf16, 2, 2)

// ---------------------------------------------------------------- NormShiftMix (one token)
// norm = LayerNorm(x) (the layernorm kernel's arithmetic, so both agree to
// the bit), then dst[m] = norm + (state − norm)·mix[m] and state = norm.
// Every block computes the row's statistics and handles a slice of the
// channels.
extern "C" __global__ void __launch_bounds__(256)
    normshiftmix(MixArgs m, int nmix, float* norm, const float* x, const float* w, const float* b, float eps,
                 float* state, int C) {
    __shared__ float sh[32];
    // Warm L2 with this block's parameters and state (safe before the
    // wait: L2 is coherent), so that only x is waited for.
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x) {
        prefetch_l2(w + c);
        prefetch_l2(b + c);
        prefetch_l2(state + c);
        for (int j = 0; j < nmix; j++) prefetch_l2(m.mix[j] + c);
    }
    pdl_launch();
    pdl_wait();
    float mean, inv;
    row_stats(x, C, eps, sh, mean, inv);
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x) {
        float nv = (x[c] - mean) * inv * w[c] + b[c];
        norm[c] = nv;
        float d = state[c] - nv;
        for (int j = 0; j < nmix; j++) m.dst[j][c] = nv + d * m.mix[j][c];
        state[c] = nv;
    }
}

// ---------------------------------------------------------------- NormShiftRows (batched decode)
// Row blockIdx.x of T independent sequences, one token each: norm =
// LayerNorm(x) (the layernorm kernel's arithmetic, so both agree to the
// bit), dst[m] = norm + (state − norm)·mix[m] with the row's own state
// row, then state = norm. One kernel instead of LayerNorm, two Lerps and
// a Copy over [T, C]. With few rows, gridDim.y blocks share a row: each
// computes the row's statistics (the same sums, so the same values) and
// handles a slice of the channels. A thread loads its channel's operands
// before storing anything (the stores could alias them for the compiler).
extern "C" __global__ void __launch_bounds__(256)
    normshift_rows(MixArgs m, int nmix, float* norm, const float* x, const float* w, const float* b, float eps,
                   float* state, int C) {
    __shared__ float sh[32];
    long long off = (long long)blockIdx.x * C;
    const float* xr = x + off;
    float mean, inv;
    row_stats(xr, C, eps, sh, mean, inv);
    int slice = (C + gridDim.y - 1) / gridDim.y;
    int c1 = min(C, (int)(blockIdx.y + 1) * slice);
    for (int c = blockIdx.y * slice + threadIdx.x; c < c1; c += blockDim.x) {
        float mv[8];
#pragma unroll
        for (int j = 0; j < 8; j++)
            if (j < nmix) mv[j] = m.mix[j][c];
        float xv = xr[c], wv = w[c], bv = b[c], sv = state[off + c];
        float nv = (xv - mean) * inv * wv + bv;
        float d = sv - nv;
        norm[off + c] = nv;
#pragma unroll
        for (int j = 0; j < 8; j++)
            if (j < nmix) m.dst[j][off + c] = nv + d * mv[j];
        state[off + c] = nv;
    }
}

// ---------------------------------------------------------------- LoRA ups + Prep7 (one token)
// For the 64 channels of head blockIdx.x: raw[m][c] = Σ_r h_m[r]·W_m[r][c]
// for the four up-projections (w, a, v, g; v absent in layer 0), then
// Prep7 on those channels with the raw w, a, v outputs. The rows of each
// matrix are split over gridDim.y blocks (8 column groups × 32 row lanes
// each, as mm_body), whose weights are all loaded before pdl_wait; each
// stores its partial sums in part, and the last block of a head to finish
// (counted in count[head], which it resets) adds them in order and runs
// Prep7.
struct UpArgs {
    const float* h[4];  // hw, ha, hv, hg [1, D_m]
    const void* w[4];   // W2, A2, V2, G2 [D_m, C]
    int d[4];           // D_m (0: absent)
};
struct P7Args {
    float *K, *V, *VF, *ZV, *W, *A, *B, *G;
    const float *W0, *A0, *V0, *KK, *KA;
};

template <int DT>
__device__ __forceinline__ void up7_body(const UpArgs& u, const P7Args& p, int C, float* part, unsigned* count) {
    __shared__ float sh[8][4][64];
    __shared__ float red[32];
    __shared__ int last;
    const int PRE = 3;
    int cg = threadIdx.x & 7, kl = threadIdx.x >> 3;
    int h = blockIdx.x, sp = blockIdx.y, S = gridDim.y;
    int c0 = h * 64 + cg * 8;
    int rb[4], re[4];
#pragma unroll
    for (int m = 0; m < 4; m++) {
        rb[m] = u.d[m] * sp / S;
        re[m] = u.d[m] * (sp + 1) / S;
    }
    WRaw<DT> pre[4][PRE];
#pragma unroll
    for (int m = 0; m < 4; m++)
#pragma unroll
        for (int j = 0; j < PRE; j++) {
            int r = rb[m] + kl + 32 * j;
            if (r < re[m]) wraw_load<DT>(pre[m][j], u.w[m], (long long)r * C + c0);
        }
    pdl_launch();
    pdl_wait();
    float acc[4][8];
#pragma unroll
    for (int m = 0; m < 4; m++) {
#pragma unroll
        for (int e = 0; e < 8; e++) acc[m][e] = 0.0f;
        const float* hm = u.h[m];
#pragma unroll
        for (int j = 0; j < PRE; j++) {
            int r = rb[m] + kl + 32 * j;
            if (r < re[m]) {
                float wv[8];
                wraw_cvt<DT>(pre[m][j], wv);
                float hv = hm[r];
#pragma unroll
                for (int e = 0; e < 8; e++) acc[m][e] += hv * wv[e];
            }
        }
        for (int r = rb[m] + kl + 32 * PRE; r < re[m]; r += 32) {
            float wv[8];
            wload8<DT>(u.w[m], (long long)r * C + c0, wv);
            float hv = hm[r];
#pragma unroll
            for (int e = 0; e < 8; e++) acc[m][e] += hv * wv[e];
        }
    }
    int warp = threadIdx.x >> 5;
#pragma unroll
    for (int m = 0; m < 4; m++)
#pragma unroll
        for (int e = 0; e < 8; e++) {
            float v = acc[m][e];
            v += __shfl_xor_sync(0xffffffffu, v, 8);
            v += __shfl_xor_sync(0xffffffffu, v, 16);
            acc[m][e] = v;
        }
    if ((threadIdx.x & 31) < 8) {
#pragma unroll
        for (int m = 0; m < 4; m++)
#pragma unroll
            for (int e = 0; e < 8; e++) sh[warp][m][cg * 8 + e] = acc[m][e];
    }
    __syncthreads();
    bool live = threadIdx.x < 64;
    int ci = threadIdx.x & 63;
    int c = h * 64 + ci;
    float raw[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (live) {
#pragma unroll
        for (int m = 0; m < 4; m++)
#pragma unroll
            for (int w = 0; w < 8; w++) raw[m] += sh[w][m][ci];
    }
    if (S > 1) {
        if (live) {
#pragma unroll
            for (int m = 0; m < 4; m++) part[(((long long)h * S + sp) * 4 + m) * 64 + ci] = raw[m];
            __threadfence();
        }
        __syncthreads();
        if (threadIdx.x == 0) last = atomicAdd(&count[h], 1u) == (unsigned)(S - 1);
        __syncthreads();
        if (!last) return;
        __threadfence();
        if (live) {
            const volatile float* pv = part;
#pragma unroll
            for (int m = 0; m < 4; m++) {
                float t = 0.0f;
                for (int q = 0; q < S; q++) t += pv[(((long long)h * S + q) * 4 + m) * 64 + ci];
                raw[m] = t;
            }
        }
        if (threadIdx.x == 0) count[h] = 0;
    }
    // Prep7 for channel c (threads 0..63); the others join the block sums
    // with zeros.
    float k = live ? p.K[c] : 0.0f;
    float kk = live ? k * p.KK[c] : 0.0f;
    float ss = block_sum(kk * kk, red);
    if (!live) return;
    float nrm = fmaxf(sqrtf(ss), 1e-12f);
    float kh = kk / nrm;
    float alpha = sigmoidf_(p.A0[c] + raw[1]);
    p.W[c] = expf(-0.6065306597126334f * sigmoidf_(p.W0[c] + raw[0]));
    p.A[c] = -kh;
    p.B[c] = kh * alpha;
    p.K[c] = k * (1.0f + (alpha - 1.0f) * p.KA[c]);
    p.G[c] = raw[3];
    float v = p.V[c];
    if (u.d[2] > 0) {
        p.ZV[c] = raw[2];
        p.V[c] = v + (p.VF[c] - v) * sigmoidf_(p.V0[c] + raw[2]);
    } else {
        p.VF[c] = v;
    }
}
#define UP7(NAME, DT)                                                                                         \
    extern "C" __global__ void __launch_bounds__(256)                                                        \
        NAME(UpArgs u, P7Args p, int C, float* part, unsigned* count) {                                      \
        up7_body<DT>(u, p, C, part, count);                                                                   \
    }
UP7(up7_f32, 0) UP7(up7_f16, 1) UP7(up7_bf16, 2)

// ---------------------------------------------------------------- WKV7 + Out7 (one token)
// One block per head, 4 threads per state row as wkv7_body<4>; y goes to
// global memory and shared memory, then the first 64 threads apply Out7:
// dst = (GroupNorm(y) + (Σ r·k·rk)·v) ⊙ g.
struct O7Args {
    float* D;
    const float *G, *RK, *LW, *LB;
};
extern "C" __global__ void __launch_bounds__(256)
    wkv7out(float* __restrict__ y, float* __restrict__ s, WKVIn in, O7Args o, int C, float eps) {
    __shared__ float inb[6][64];
    __shared__ float ys[64];
    __shared__ float red[32];
    const int TPR = 4, G = 4;
    int h = blockIdx.x, i = threadIdx.x / TPR, q = threadIdx.x % TPR;
    long long hoff = (long long)h * 64;
    float* srow = s + (hoff + i) * 64;
    // Warm L2 with this thread's part of the state (safe before the wait:
    // L2 is coherent; the registers are loaded after it).
    prefetch_l2(srow + 16 * q);
    pdl_launch();
    pdl_wait();
    for (int e = threadIdx.x; e < 6 * 64; e += blockDim.x) inb[e >> 6][e & 63] = in.p[e >> 6][hoff + (e & 63)];
    float S[4 * G];
#pragma unroll
    for (int m = 0; m < G; m++) {
        float4 v4 = *(const float4*)(srow + 4 * (q + TPR * m));
        S[4 * m] = v4.x; S[4 * m + 1] = v4.y; S[4 * m + 2] = v4.z; S[4 * m + 3] = v4.w;
    }
    __syncthreads();
    const float4* R4 = (const float4*)inb[0];
    const float4* W4 = (const float4*)inb[1];
    const float4* K4 = (const float4*)inb[2];
    const float4* A4 = (const float4*)inb[3];
    const float4* B4 = (const float4*)inb[4];
    float vi = inb[5][i];
    float yy = wkv_row<TPR>(S, R4, W4, K4, A4, B4, vi, q);
    if (q == 0) {
        y[hoff + i] = yy;
        ys[i] = yy;
    }
#pragma unroll
    for (int m = 0; m < G; m++)
        *(float4*)(srow + 4 * (q + TPR * m)) = make_float4(S[4 * m], S[4 * m + 1], S[4 * m + 2], S[4 * m + 3]);
    __syncthreads();
    // Out7 on the head's 64 channels; the other threads add zeros.
    bool live = threadIdx.x < 64;
    int j = threadIdx.x & 63;
    long long c = hoff + j;
    float yv = live ? ys[j] : 0.0f;
    float mean = block_sum(yv, red) / 64.0f;
    float d = live ? yv - mean : 0.0f;
    float var = block_sum(d * d, red) / 64.0f;
    float bonus = block_sum(live ? inb[0][j] * inb[2][j] * o.RK[c] : 0.0f, red);
    if (!live) return;
    float yn = d * (1.0f / sqrtf(var + eps)) * o.LW[c] + o.LB[c];
    o.D[c] = (yn + bonus * inb[5][j]) * o.G[c];
}
