// Kernels of the image towers (kernels.VisionOps): patch gathering, SAM's
// windows, residual branches, bias + activation, SpaceToDepth, column
// copies, and fused multi-head attention (flash style: the scores of a
// block of queries live in registers, never in global memory).

// ---------------------------------------------------------------- element-wise

// GELU, exact: x·Φ(x) = ½x·erfc(−x/√2).
__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * erfcf(-0.70710678118654752f * x); }

// GELU, tanh form.
__device__ __forceinline__ float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

// f: kernels.Activation (0 tanh, 1 sigmoid, 2 relu², 16 GELU, 17 GELU tanh).
__device__ __forceinline__ float vis_act(float v, int f) {
    switch (f) {
    case 0: return tanhf(v);
    case 1: return sigmoidf_(v);
    case 2: v = v > 0.0f ? v : 0.0f; return v * v;
    case 16: return gelu_erf(v);
    default: return gelu_tanh(v);
    }
}

// dst = f(x + bias); bias (may be null) is one row of C values.
extern "C" __global__ void vis_biasact(float* dst, const float* x, const float* bias, int C, int f, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float v = x[i];
        if (bias) v += bias[i % C];
        dst[i] = vis_act(v, f);
    }
}

// dst = x + (y + bias)·gamma; bias and gamma (each may be null) are rows of C.
extern "C" __global__ void vis_residual(float* dst, const float* x, const float* y, const float* bias,
                                        const float* gamma, int C, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        float v = y[i];
        if (bias) v += bias[c];
        if (gamma) v *= gamma[c];
        dst[i] = x[i] + v;
    }
}

// ---------------------------------------------------------------- rearrangements

// dst [OH·OW, C·K·K] gathers the convolution patches of src (C planes of
// H×W, or H·W rows of C with chlast); zero outside the image.
extern "C" __global__ void vis_im2col(float* dst, const float* src, int C, int H, int W, int K, int stride, int pad,
                                      int OW, int chlast, long long n) {
    int cols = C * K * K;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        int r = (int)(i / cols), col = (int)(i % cols);
        int ch = col / (K * K), kk = col % (K * K);
        int y = (r / OW) * stride - pad + kk / K, x = (r % OW) * stride - pad + kk % K;
        float v = 0.0f;
        if (y >= 0 && y < H && x >= 0 && x < W)
            v = chlast ? src[((long long)y * W + x) * C + ch] : src[((long long)ch * H + y) * W + x];
        dst[i] = v;
    }
}

// Window partition (merge = 0): dst [windows·S², C] from the map src
// [H·W, C], zero rows for padding. Merge (merge = 1): dst [H·W, C] += the
// window rows of src.
extern "C" __global__ void vis_window(float* dst, const float* src, int H, int W, int S, int C, int merge, long long n) {
    int nw = (W + S - 1) / S;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        int r = (int)(i / C), c = (int)(i % C);
        if (merge) {
            int y = r / W, x = r % W;
            int wr = ((y / S) * nw + x / S) * S * S + (y % S) * S + x % S;
            dst[i] += src[(long long)wr * C + c];
        } else {
            int win = r / (S * S), k = r % (S * S);
            int y = (win / nw) * S + k / S, x = (win % nw) * S + k % S;
            dst[i] = (y < H && x < W) ? src[((long long)y * W + x) * C + c] : 0.0f;
        }
    }
}

// dst [(h/f)·(w/f), C·f·f]: each f×f block of the map src [h·w, C] in one
// row, channel c of cell (dy, dx) at column c·f·f + dy·f + dx.
extern "C" __global__ void vis_s2d(float* dst, const float* src, int h, int w, int f, int C, long long n) {
    int CC = C * f * f, ow = w / f;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        int r = (int)(i / CC), col = (int)(i % CC);
        int c = col / (f * f), j = col % (f * f);
        int y = (r / ow) * f + j / f, x = (r % ow) * f + j % f;
        dst[i] = src[((long long)y * w + x) * C + c];
    }
}

// dst[r][col + j] = src[r][j] for j < m; dst rows are ld wide.
extern "C" __global__ void vis_copycols(float* dst, const float* src, int m, int ld, int col, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        long long r = i / m;
        int j = (int)(i % m);
        dst[r * ld + col + j] = src[i];
    }
}

// ---------------------------------------------------------------- attention
//
// Both kernels compute, for query row i of group g (rows g·n .. g·n+n−1 of
// qkv) and head h,
//     out = Σ_j softmax_j(scale·q·k_j + bias_ij)·v_j
// with bias_ij = q·relh[qy−ky+span−1] + q·relw[qx−kx+span−1] when relh is
// not null (q unscaled; i = qy·span + qx, j = ky·span + kx). qkv rows hold
// q (D values, heads of hd), then k, then v.

#define ATTN_NEG_INF (-__int_as_float(0x7f800000))

__device__ __forceinline__ float attn_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The portable kernel: one warp per query (8 a block), keys in tiles of 32
// staged in shared memory, fp32 throughout. Grid: (⌈n/8⌉, heads, groups).
// Shared memory: 32·(hd+1) + 32·hd + 16·hd + 16·span floats.
extern "C" __global__ void __launch_bounds__(256)
    attn_simt(float* dst, const float* qkv, const float* relh, const float* relw, int n, int span, int hd,
              float scale, int D) {
    extern __shared__ float sm[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int h = blockIdx.y;
    const long long base = (long long)blockIdx.z * n;
    const int qi = blockIdx.x * 8 + warp;
    const bool active = qi < n;
    const long long D3 = 3LL * D;
    float* Ks = sm;
    float* Vs = Ks + 32 * (hd + 1);
    float* q = Vs + 32 * hd + warp * hd;
    float* o = Vs + 32 * hd + 8 * hd + warp * hd;
    float* ph = Vs + 32 * hd + 16 * hd + warp * 2 * span;
    float* pw = ph + span;
    for (int d = lane; d < hd; d += 32) {
        q[d] = active ? qkv[(base + qi) * D3 + h * hd + d] : 0.0f;
        o[d] = 0.0f;
    }
    __syncwarp();
    if (relh) {
        int qy = qi / span, qx = qi % span;
        for (int k = lane; k < span; k += 32) {
            float sh = 0.0f, sw = 0.0f;
            if (active) {
                const float* rh = relh + (long long)(qy - k + span - 1) * hd;
                const float* rw = relw + (long long)(qx - k + span - 1) * hd;
                for (int d = 0; d < hd; d++) {
                    sh += q[d] * rh[d];
                    sw += q[d] * rw[d];
                }
            }
            ph[k] = sh;
            pw[k] = sw;
        }
        __syncwarp();
    }
    float m = ATTN_NEG_INF, l = 0.0f;
    for (int j0 = 0; j0 < n; j0 += 32) {
        __syncthreads();
        for (int e = threadIdx.x; e < 32 * hd; e += 256) {
            int kk = e / hd, d = e % hd, j = j0 + kk;
            float kv = 0.0f, vv = 0.0f;
            if (j < n) {
                const float* row = qkv + (base + j) * D3 + h * hd + d;
                kv = row[D];
                vv = row[2 * D];
            }
            Ks[kk * (hd + 1) + d] = kv;
            Vs[kk * hd + d] = vv;
        }
        __syncthreads();
        if (!active) continue;
        int j = j0 + lane;
        float s = ATTN_NEG_INF;
        if (j < n) {
            float acc = 0.0f;
            const float* kr = Ks + lane * (hd + 1);
            for (int d = 0; d < hd; d++) acc += q[d] * kr[d];
            s = acc * scale;
            if (relh) s += ph[j / span] + pw[j % span];
        }
        float mnew = fmaxf(m, attn_warp_max(s));
        float p = j < n ? expf(s - mnew) : 0.0f;
        float corr = expf(m - mnew);
        l = l * corr + warp_sum(p);
        for (int d0 = 0; d0 < hd; d0 += 32) {
            int d = d0 + lane;
            float acc = d < hd ? o[d] * corr : 0.0f;
            for (int kk = 0; kk < 32; kk++) {
                float pk = __shfl_sync(0xffffffffu, p, kk);
                if (d < hd) acc += pk * Vs[kk * hd + d];
            }
            if (d < hd) o[d] = acc;
        }
        m = mnew;
    }
    __syncwarp();
    if (active) {
        float inv = 1.0f / l;
        for (int d = lane; d < hd; d += 32) dst[(base + qi) * D + h * hd + d] = o[d] * inv;
    }
}

// ---- the tensor-core kernel
//
// 4 warps, 64 queries a block (16 a warp), keys in tiles of 64. Products
// run as bf16 mma.sync m16n8k16 with fp32 accumulation on split operands:
// every fp32 value a = a_hi + a_lo with a_hi = bf16(a), a_lo = bf16(a −
// a_hi), and a·b ≈ a_hi·b_hi + a_hi·b_lo + a_lo·b_hi (three products; the
// dropped a_lo·b_lo is ~2⁻¹⁶ relative), which is as exact as fp32
// operands. The queries stay in registers as A fragments; K tiles are
// staged as [key][dim] and V tiles transposed as [dim][key] (so each B
// fragment register is one 32-bit shared load), rows padded by 4 words
// against bank conflicts; the score fragments become the A fragments of
// P·V without leaving registers. HDP is the head width rounded up to 16
// (the padding dims are zero). Grid: (⌈n/64⌉, heads, groups); shared
// memory: see attnMMA2Smem in vision.go.

__device__ __forceinline__ void split_bf16(float a, u32& hi, u32& lo) {
    u16 h = f32_to_bf16(a);
    hi = h;
    lo = f32_to_bf16(a - bf16_to_f32(h));
}

// Packs two fp32 values as hi and lo bf16 pairs (the first in the low half).
__device__ __forceinline__ void pack_split(float a, float b, u32& hi, u32& lo) {
    u32 ah, al, bh, bl;
    split_bf16(a, ah, al);
    split_bf16(b, bh, bl);
    hi = ah | (bh << 16);
    lo = al | (bl << 16);
}

__device__ __forceinline__ void mma_bf16(float* c, const u32* a, u32 b0, u32 b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}


// attn_pack converts the keys and values of every group and head once to
// split bf16 (hi = bf16(x), lo = bf16(x − hi)), or with f16 to one fp16
// plane each (kl and vl unused), in the layouts the tiles are read in: K as [group][head][key][HDP], V transposed as
// [group][head][HDP][key], keys padded to np (a multiple of 64) and dims
// to HDP with zeros. attn_mma2 then stages each 64-key tile with 16-byte
// cp.async copies, two tiles in flight (converting the tiles in every
// block instead, an earlier form, took twice as long: PERF.md).

extern "C" __global__ void attn_pack(u16* kh, u16* kl, u16* vh, u16* vl, const float* qkv, int n, int np, int hd,
                                     int hdp, int heads, int D, int f16, long long total) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        int d = (int)(i % hdp);
        long long r = i / hdp;
        int j = (int)(r % np);
        long long gh = r / np;  // group·heads + head
        int h = (int)(gh % heads);
        long long g = gh / heads;
        float kv = 0.0f, vv = 0.0f;
        if (j < n && d < hd) {
            const float* row = qkv + (g * n + j) * 3LL * D + h * hd + d;
            kv = row[D];
            vv = row[2 * D];
        }
        long long vi = (gh * hdp + d) * np + j;
        if (f16) {  // one fp16 plane each (attn_f16)
            kh[i] = f32_to_f16(kv);
            vh[vi] = f32_to_f16(vv);
            continue;
        }
        u16 a = f32_to_bf16(kv);
        kh[i] = a;
        kl[i] = f32_to_bf16(kv - bf16_to_f32(a));
        u16 b = f32_to_bf16(vv);
        vh[vi] = b;
        vl[vi] = f32_to_bf16(vv - bf16_to_f32(b));
    }
}

template <int HDP>
__device__ __forceinline__ void attn_mma2_body(float* dst, const float* qkv, const u16* pkh, const u16* pkl,
                                               const u16* pvh, const u16* pvl, const float* relh,
                                               const float* relw, int n, int np, int span, int hd, float scale,
                                               int D) {
    constexpr int KW = HDP / 2 + 4;  // words per staged K row
    constexpr int VW = 32 + 4;       // words per staged V row (64 keys)
    constexpr int NT = HDP / 8;
    constexpr int KS = HDP / 16;
    constexpr int STAGE = 2 * 64 * KW + 2 * HDP * VW;  // words of one tile (K hi, lo; V hi, lo)
    extern __shared__ u32 smem[];
    float* ph = (float*)(smem + 2 * STAGE);  // [64][span] when relh
    float* pw = ph + 64 * span;
    int* kyx = (int*)(pw + 64 * span);  // the tile's keys: ky << 16 | kx

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int h = blockIdx.y;
    const long long base = (long long)blockIdx.z * n;
    const long long gh = (long long)blockIdx.z * gridDim.y + h;
    const int q0 = blockIdx.x * 64;
    const long long D3 = 3LL * D;
    const float* qbase = qkv + h * hd;
    const u16* gkh = pkh + gh * np * HDP;
    const u16* gkl = pkl + gh * np * HDP;
    const u16* gvh = pvh + gh * HDP * np;
    const u16* gvl = pvl + gh * HDP * np;

    // Stage tile j0's keys and values into buffer s.
    auto stage = [&](int s, int j0) {
        u32* Kh = smem + s * STAGE;
        u32* Kl = Kh + 64 * KW;
        u32* Vh = Kl + 64 * KW;
        u32* Vl = Vh + HDP * VW;
        constexpr int KC = HDP / 8;  // 16-byte chunks of a K row
        for (int c = threadIdx.x; c < 64 * KC; c += blockDim.x) {
            int r = c / KC, o = c % KC;
            cp_async16(Kh + r * KW + o * 4, gkh + (long long)(j0 + r) * HDP + o * 8);
            cp_async16(Kl + r * KW + o * 4, gkl + (long long)(j0 + r) * HDP + o * 8);
        }
        for (int c = threadIdx.x; c < HDP * 8; c += blockDim.x) {
            int r = c >> 3, o = c & 7;
            cp_async16(Vh + r * VW + o * 4, gvh + (long long)r * np + j0 + o * 8);
            cp_async16(Vl + r * VW + o * 4, gvl + (long long)r * np + j0 + o * 8);
        }
        cp_commit();
    };
    stage(0, 0);

    if (relh) {
        for (int e = threadIdx.x; e < 64 * span; e += blockDim.x) {
            int r = e / span, k = e % span, qi = q0 + r;
            float sh = 0.0f, sw = 0.0f;
            if (qi < n) {
                const float* qr = qbase + (base + qi) * D3;
                const float* rh = relh + (long long)(qi / span - k + span - 1) * hd;
                const float* rw = relw + (long long)(qi % span - k + span - 1) * hd;
                for (int d = 0; d < hd; d++) {
                    float qv = qr[d];
                    sh += qv * rh[d];
                    sw += qv * rw[d];
                }
            }
            ph[e] = sh;
            pw[e] = sw;
        }
    }

    u32 qh[KS][4], ql[KS][4];
    {
        int r0 = q0 + warp * 16 + g, r1 = r0 + 8;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                int d = ks * 16 + hf * 8 + 2 * t;
#pragma unroll
                for (int rr = 0; rr < 2; rr++) {
                    int qi = rr ? r1 : r0;
                    float a = 0.0f, b = 0.0f;
                    if (qi < n) {
                        const float* qr = qbase + (base + qi) * D3;
                        if (d < hd) a = qr[d];
                        if (d + 1 < hd) b = qr[d + 1];
                    }
                    pack_split(a, b, qh[ks][hf * 2 + rr], ql[ks][hf * 2 + rr]);
                }
            }
        }
    }

    float o[NT][4];
#pragma unroll
    for (int i = 0; i < NT; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m0 = ATTN_NEG_INF, m1 = ATTN_NEG_INF, l0 = 0.0f, l1 = 0.0f;
    const float sl = scale * 1.4426950408889634f;
    const float L2E = 1.4426950408889634f;
    const int rl0 = warp * 16 + g, rl1 = rl0 + 8;
    const float* ph0 = ph + rl0 * span;
    const float* pw0 = pw + rl0 * span;
    const float* ph1 = ph + rl1 * span;
    const float* pw1 = pw + rl1 * span;
    const int ntiles = (n + 63) / 64;

    for (int it = 0; it < ntiles; it++) {
        const int j0 = it * 64;
        if (it + 1 < ntiles) {
            stage((it + 1) & 1, j0 + 64);
            cp_wait_all_but1();
        } else {
            cp_wait_all();
        }
        if (relh && threadIdx.x < 64) {
            int j = j0 + threadIdx.x;
            kyx[threadIdx.x] = ((j / span) << 16) | (j % span);
        }
        __syncthreads();
        const u32* Kh = smem + (it & 1) * STAGE;
        const u32* Kl = Kh + 64 * KW;
        const u32* Vh = Kl + 64 * KW;
        const u32* Vl = Vh + HDP * VW;

        float s[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
            const u32* kh = Kh + (nt * 8 + g) * KW;
            const u32* kl = Kl + (nt * 8 + g) * KW;
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                u32 bh0 = kh[ks * 8 + t], bh1 = kh[ks * 8 + 4 + t];
                u32 bl0 = kl[ks * 8 + t], bl1 = kl[ks * 8 + 4 + t];
                mma_bf16(s[nt], qh[ks], bh0, bh1);
                mma_bf16(s[nt], qh[ks], bl0, bl1);
                mma_bf16(s[nt], ql[ks], bh0, bh1);
            }
        }
        float mx0 = ATTN_NEG_INF, mx1 = ATTN_NEG_INF;
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int c = nt * 8 + 2 * t + e;
                float v0 = s[nt][e] * sl, v1 = s[nt][2 + e] * sl;
                if (j0 + c >= n) {
                    v0 = v1 = ATTN_NEG_INF;
                } else if (relh) {
                    int k = kyx[c], ky = k >> 16, kx = k & 0xffff;
                    v0 += (ph0[ky] + pw0[kx]) * L2E;
                    v1 += (ph1[ky] + pw1[kx]) * L2E;
                }
                s[nt][e] = v0;
                s[nt][2 + e] = v1;
                mx0 = fmaxf(mx0, v0);
                mx1 = fmaxf(mx1, v1);
            }
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        float c0 = exp2f(m0 - mn0), c1 = exp2f(m1 - mn1);
        m0 = mn0;
        m1 = mn1;
        l0 *= c0;
        l1 *= c1;
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            o[nt][0] *= c0;
            o[nt][1] *= c0;
            o[nt][2] *= c1;
            o[nt][3] *= c1;
        }
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            s[nt][0] = exp2f(s[nt][0] - mn0);
            s[nt][1] = exp2f(s[nt][1] - mn0);
            s[nt][2] = exp2f(s[nt][2] - mn1);
            s[nt][3] = exp2f(s[nt][3] - mn1);
            l0 += s[nt][0] + s[nt][1];
            l1 += s[nt][2] + s[nt][3];
        }
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            u32 pa[4], pl[4];
            pack_split(s[2 * ks][0], s[2 * ks][1], pa[0], pl[0]);
            pack_split(s[2 * ks][2], s[2 * ks][3], pa[1], pl[1]);
            pack_split(s[2 * ks + 1][0], s[2 * ks + 1][1], pa[2], pl[2]);
            pack_split(s[2 * ks + 1][2], s[2 * ks + 1][3], pa[3], pl[3]);
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                const u32* vh = Vh + (nt * 8 + g) * VW + ks * 8;
                const u32* vl = Vl + (nt * 8 + g) * VW + ks * 8;
                u32 bh0 = vh[t], bh1 = vh[4 + t];
                u32 bl0 = vl[t], bl1 = vl[4 + t];
                mma_bf16(o[nt], pa, bh0, bh1);
                mma_bf16(o[nt], pa, bl0, bl1);
                mma_bf16(o[nt], pl, bh0, bh1);
            }
        }
        __syncthreads();  // the buffer is staged again two tiles on
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    int qi0 = q0 + rl0, qi1 = q0 + rl1;
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
        int d = nt * 8 + 2 * t;
        if (qi0 < n) {
            float* out = dst + (base + qi0) * D + h * hd;
            if (d < hd) out[d] = o[nt][0] * inv0;
            if (d + 1 < hd) out[d + 1] = o[nt][1] * inv0;
        }
        if (qi1 < n) {
            float* out = dst + (base + qi1) * D + h * hd;
            if (d < hd) out[d] = o[nt][2] * inv1;
            if (d + 1 < hd) out[d + 1] = o[nt][3] * inv1;
        }
    }
}

#define ATTN_MMA2(HDP)                                                                                       \
    extern "C" __global__ void __launch_bounds__(128)                                                       \
        attn_mma2_##HDP(float* dst, const float* qkv, const u16* kh, const u16* kl, const u16* vh,          \
                        const u16* vl, const float* relh, const float* relw, int n, int np, int span, int hd, \
                        float scale, int D) {                                                                \
        attn_mma2_body<HDP>(dst, qkv, kh, kl, vh, vl, relh, relw, n, np, span, hd, scale, D);               \
    }
ATTN_MMA2(32)
ATTN_MMA2(64)
ATTN_MMA2(80)
ATTN_MMA2(128)

// ---- the tensor-core kernel, second form (attn_mma3, default; attn_f16)
//
// attn_mma2's structure (4 warps, 64 queries a block, 64-key tiles staged
// by cp.async two deep, split-bf16 products), with three changes:
// - SAM's relative-position bias tables ph = q·RelH, pw = q·RelW (times
//   log₂e) come from attn_relpos, which computes them once for all blocks
//   with the tables and queries in shared memory; attn_mma2 computed them
//   in every block with each lane reading its own table row from global
//   memory (32 cache lines a load);
// - when the span is a multiple of 64 (SAM's global blocks), a tile of 64
//   keys lies in one row of the key grid: its ph value is one load per
//   query row and tile and its pw values sit at a fixed offset, so a score
//   costs one shared load of bias instead of three;
// - the B fragments of both products are read with ldmatrix (one
//   instruction for four registers instead of four 32-bit loads).
// With SPLIT false (attn_f16) the operands are single fp16 values (one
// product instead of three, half the staged bytes): ~2⁻¹¹ relative
// rounding of q, k, v and the softmax weights, not fp32-grade (PERF.md).

// Four (x4) or two (x2) 8×8 b16 matrices from shared memory: lane l gives
// the address of row l&7 of matrix l>>3; register i gets, from matrix i,
// row lane/4, elements 2·(lane%4) and 2·(lane%4)+1 — the B fragment of
// mma m16n8k16 when a matrix row holds 8 consecutive k of one n.
__device__ __forceinline__ void ldsm_x4(u32* r, const u32* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x2(u32* r, const u32* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(p)));
}

__device__ __forceinline__ void mma_f16(float* c, const u32* a, u32 b0, u32 b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two fp32 values as an fp16 pair (the first in the low half).
__device__ __forceinline__ u32 pack_f16(float a, float b) { return (u32)f32_to_f16(a) | ((u32)f32_to_f16(b) << 16); }

// attn_relpos writes, for every group g, head h, query i < n and k < span,
//     ph[(g·heads + h)·n + i][k] = log₂e · q_i·relh[qy − k + span − 1]
//     pw[(g·heads + h)·n + i][k] = log₂e · q_i·relw[qx − k + span − 1]
// (q unscaled, i = qy·span + qx), fp32. Grid (⌈n/64⌉, heads, groups), 256
// threads; shared memory: 64 query rows and both tables, rows padded to
// hd + 1 floats (a warp's lanes read different table rows without bank
// conflicts).
extern "C" __global__ void __launch_bounds__(256)
    attn_relpos(float* ph, float* pw, const float* qkv, const float* relh, const float* relw, int n, int span,
                int hd, int D) {
    extern __shared__ float rsm[];
    const int ld = hd + 1, R = 2 * span - 1;
    float* qs = rsm;
    float* th = qs + 64 * ld;
    float* tw = th + R * ld;
    const int h = blockIdx.y;
    const long long base = (long long)blockIdx.z * n;
    const long long gh = (long long)blockIdx.z * gridDim.y + h;
    const int q0 = blockIdx.x * 64;
    for (int e = threadIdx.x; e < 64 * hd; e += blockDim.x) {
        int r = e / hd, d = e % hd, qi = q0 + r;
        qs[r * ld + d] = qi < n ? qkv[(base + qi) * 3LL * D + h * hd + d] : 0.0f;
    }
    for (int e = threadIdx.x; e < R * hd; e += blockDim.x) {
        int r = e / hd, d = e % hd;
        th[r * ld + d] = relh[e];
        tw[r * ld + d] = relw[e];
    }
    __syncthreads();
    const float L2E = 1.4426950408889634f;
    for (int e = threadIdx.x; e < 64 * span; e += blockDim.x) {
        int r = e / span, k = e % span, qi = q0 + r;
        if (qi >= n) continue;
        const float* q = qs + r * ld;
        const float* a = th + (qi / span - k + span - 1) * ld;
        const float* b = tw + (qi % span - k + span - 1) * ld;
        float sh = 0.0f, sw = 0.0f;
        for (int d = 0; d < hd; d++) {
            float qv = q[d];
            sh += qv * a[d];
            sw += qv * b[d];
        }
        long long o = (gh * n + qi) * span + k;
        ph[o] = sh * L2E;
        pw[o] = sw * L2E;
    }
}

template <int HDP, bool SPLIT>
__device__ __forceinline__ void attn_mma3_body(float* dst, const float* qkv, const u16* pkh, const u16* pkl,
                                               const u16* pvh, const u16* pvl, const float* gph,
                                               const float* gpw, int n, int np, int span, int hd, float scale,
                                               int D) {
    constexpr int KW = HDP / 2 + 4;             // words per staged K row
    constexpr int VW = 32 + 4;                  // words per staged V row (64 keys)
    constexpr int NT = HDP / 8;
    constexpr int KS = HDP / 16;
    constexpr int PARTS = SPLIT ? 2 : 1;        // planes staged: hi (and lo)
    constexpr int STAGE = PARTS * (64 * KW + HDP * VW);
    extern __shared__ u32 smem[];
    float* ph = (float*)(smem + 2 * STAGE);  // [64][span] when gph
    float* pw = ph + 64 * span;
    int* kyx = (int*)(pw + 64 * span);  // the tile's keys: ky << 16 | kx

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int lr = lane & 7, lm = lane >> 3;  // ldmatrix: row in matrix, matrix
    const int h = blockIdx.y;
    const long long base = (long long)blockIdx.z * n;
    const long long gh = (long long)blockIdx.z * gridDim.y + h;
    const int q0 = blockIdx.x * 64;
    const long long D3 = 3LL * D;
    const float* qbase = qkv + h * hd;
    const u16* gkh = pkh + gh * np * HDP;
    const u16* gkl = pkl + gh * np * HDP;
    const u16* gvh = pvh + gh * HDP * np;
    const u16* gvl = pvl + gh * HDP * np;
    const bool rel = gph != nullptr;
    const bool rowtile = rel && span % 64 == 0;

    auto stage = [&](int s, int j0) {
        u32* Kh = smem + s * STAGE;
        u32* Kl = Kh + 64 * KW;
        u32* Vh = Kh + PARTS * 64 * KW;
        u32* Vl = Vh + HDP * VW;
        constexpr int KC = HDP / 8;  // 16-byte chunks of a K row
        for (int c = threadIdx.x; c < 64 * KC; c += blockDim.x) {
            int r = c / KC, o = c % KC;
            cp_async16(Kh + r * KW + o * 4, gkh + (long long)(j0 + r) * HDP + o * 8);
            if (SPLIT) cp_async16(Kl + r * KW + o * 4, gkl + (long long)(j0 + r) * HDP + o * 8);
        }
        for (int c = threadIdx.x; c < HDP * 8; c += blockDim.x) {
            int r = c >> 3, o = c & 7;
            cp_async16(Vh + r * VW + o * 4, gvh + (long long)r * np + j0 + o * 8);
            if (SPLIT) cp_async16(Vl + r * VW + o * 4, gvl + (long long)r * np + j0 + o * 8);
        }
        cp_commit();
    };
    stage(0, 0);

    if (rel) {  // this block's rows of the tables, contiguous in gph, gpw
        const long long gb = (gh * n + q0) * (long long)span;
        const int rows = min(64, n - q0);
        for (int e = threadIdx.x; e < 64 * span; e += blockDim.x) {
            bool ok = e < rows * span;
            ph[e] = ok ? gph[gb + e] : 0.0f;
            pw[e] = ok ? gpw[gb + e] : 0.0f;
        }
    }

    u32 qh[KS][4], ql[KS][4];
    {
        int r0 = q0 + warp * 16 + g, r1 = r0 + 8;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                int d = ks * 16 + hf * 8 + 2 * t;
#pragma unroll
                for (int rr = 0; rr < 2; rr++) {
                    int qi = rr ? r1 : r0;
                    float a = 0.0f, b = 0.0f;
                    if (qi < n) {
                        const float* qr = qbase + (base + qi) * D3;
                        if (d < hd) a = qr[d];
                        if (d + 1 < hd) b = qr[d + 1];
                    }
                    if (SPLIT) {
                        pack_split(a, b, qh[ks][hf * 2 + rr], ql[ks][hf * 2 + rr]);
                    } else {
                        qh[ks][hf * 2 + rr] = pack_f16(a, b);
                        ql[ks][hf * 2 + rr] = 0;
                    }
                }
            }
        }
    }

    float o[NT][4];
#pragma unroll
    for (int i = 0; i < NT; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m0 = ATTN_NEG_INF, m1 = ATTN_NEG_INF, l0 = 0.0f, l1 = 0.0f;
    const float sl = scale * 1.4426950408889634f;
    const int rl0 = warp * 16 + g, rl1 = rl0 + 8;
    const float* ph0 = ph + rl0 * span;
    const float* pw0 = pw + rl0 * span;
    const float* ph1 = ph + rl1 * span;
    const float* pw1 = pw + rl1 * span;
    const int ntiles = (n + 63) / 64;
    // The lane's ldmatrix offsets (words): K row (key) lr of matrix lm, at
    // dims +4 words for odd matrices and the next k step for the upper
    // two; V row (dim) lr of the lower or upper n tile, +4 words likewise.
    const int koff = lr * KW + (lm & 1) * 4 + (lm >> 1) * 8;
    const int voff = ((lm >> 1) * 8 + lr) * VW + (lm & 1) * 4;

    for (int it = 0; it < ntiles; it++) {
        const int j0 = it * 64;
        if (it + 1 < ntiles) {
            stage((it + 1) & 1, j0 + 64);
            cp_wait_all_but1();
        } else {
            cp_wait_all();
        }
        if (rel && !rowtile && threadIdx.x < 64) {
            int j = j0 + threadIdx.x;
            kyx[threadIdx.x] = ((j / span) << 16) | (j % span);
        }
        __syncthreads();
        const u32* Kh = smem + (it & 1) * STAGE;
        const u32* Kl = Kh + 64 * KW;
        const u32* Vh = Kh + PARTS * 64 * KW;
        const u32* Vl = Vh + HDP * VW;

        float s[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
            const u32* kh = Kh + nt * 8 * KW + koff;
            const u32* kl = Kl + nt * 8 * KW + koff;
#pragma unroll
            for (int ks = 0; ks + 1 < KS; ks += 2) {
                u32 bh[4], bl[4];
                ldsm_x4(bh, kh + ks * 8);
                if (SPLIT) {
                    ldsm_x4(bl, kl + ks * 8);
                    mma_bf16(s[nt], qh[ks], bh[0], bh[1]);
                    mma_bf16(s[nt], qh[ks], bl[0], bl[1]);
                    mma_bf16(s[nt], ql[ks], bh[0], bh[1]);
                    mma_bf16(s[nt], qh[ks + 1], bh[2], bh[3]);
                    mma_bf16(s[nt], qh[ks + 1], bl[2], bl[3]);
                    mma_bf16(s[nt], ql[ks + 1], bh[2], bh[3]);
                } else {
                    mma_f16(s[nt], qh[ks], bh[0], bh[1]);
                    mma_f16(s[nt], qh[ks + 1], bh[2], bh[3]);
                }
            }
            if (KS & 1) {
                constexpr int ks = KS - 1;
                u32 bh[2], bl[2];
                ldsm_x2(bh, kh + ks * 8);
                if (SPLIT) {
                    ldsm_x2(bl, kl + ks * 8);
                    mma_bf16(s[nt], qh[ks], bh[0], bh[1]);
                    mma_bf16(s[nt], qh[ks], bl[0], bl[1]);
                    mma_bf16(s[nt], ql[ks], bh[0], bh[1]);
                } else {
                    mma_f16(s[nt], qh[ks], bh[0], bh[1]);
                }
            }
        }
        // Bias of a tile within one key-grid row: ky fixed, kx = kx0 + c.
        float bh0 = 0.0f, bh1 = 0.0f;
        const float* pr0 = pw0;
        const float* pr1 = pw1;
        if (rowtile) {
            int ky = j0 / span, kx0 = j0 % span;
            bh0 = ph0[ky];
            bh1 = ph1[ky];
            pr0 = pw0 + kx0;
            pr1 = pw1 + kx0;
        }
        float mx0 = ATTN_NEG_INF, mx1 = ATTN_NEG_INF;
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int c = nt * 8 + 2 * t + e;
                float v0 = s[nt][e] * sl, v1 = s[nt][2 + e] * sl;
                if (j0 + c >= n) {
                    v0 = v1 = ATTN_NEG_INF;
                } else if (rowtile) {
                    v0 += bh0 + pr0[c];
                    v1 += bh1 + pr1[c];
                } else if (rel) {
                    int k = kyx[c], ky = k >> 16, kx = k & 0xffff;
                    v0 += ph0[ky] + pw0[kx];
                    v1 += ph1[ky] + pw1[kx];
                }
                s[nt][e] = v0;
                s[nt][2 + e] = v1;
                mx0 = fmaxf(mx0, v0);
                mx1 = fmaxf(mx1, v1);
            }
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        float c0 = exp2f(m0 - mn0), c1 = exp2f(m1 - mn1);
        m0 = mn0;
        m1 = mn1;
        l0 *= c0;
        l1 *= c1;
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            o[nt][0] *= c0;
            o[nt][1] *= c0;
            o[nt][2] *= c1;
            o[nt][3] *= c1;
        }
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            s[nt][0] = exp2f(s[nt][0] - mn0);
            s[nt][1] = exp2f(s[nt][1] - mn0);
            s[nt][2] = exp2f(s[nt][2] - mn1);
            s[nt][3] = exp2f(s[nt][3] - mn1);
            l0 += s[nt][0] + s[nt][1];
            l1 += s[nt][2] + s[nt][3];
        }
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            u32 pa[4], pl[4];
            if (SPLIT) {
                pack_split(s[2 * ks][0], s[2 * ks][1], pa[0], pl[0]);
                pack_split(s[2 * ks][2], s[2 * ks][3], pa[1], pl[1]);
                pack_split(s[2 * ks + 1][0], s[2 * ks + 1][1], pa[2], pl[2]);
                pack_split(s[2 * ks + 1][2], s[2 * ks + 1][3], pa[3], pl[3]);
            } else {
                pa[0] = pack_f16(s[2 * ks][0], s[2 * ks][1]);
                pa[1] = pack_f16(s[2 * ks][2], s[2 * ks][3]);
                pa[2] = pack_f16(s[2 * ks + 1][0], s[2 * ks + 1][1]);
                pa[3] = pack_f16(s[2 * ks + 1][2], s[2 * ks + 1][3]);
            }
#pragma unroll
            for (int nt = 0; nt < NT; nt += 2) {
                u32 bh[4], bl[4];
                ldsm_x4(bh, Vh + nt * 8 * VW + voff + ks * 8);
                if (SPLIT) {
                    ldsm_x4(bl, Vl + nt * 8 * VW + voff + ks * 8);
                    mma_bf16(o[nt], pa, bh[0], bh[1]);
                    mma_bf16(o[nt], pa, bl[0], bl[1]);
                    mma_bf16(o[nt], pl, bh[0], bh[1]);
                    mma_bf16(o[nt + 1], pa, bh[2], bh[3]);
                    mma_bf16(o[nt + 1], pa, bl[2], bl[3]);
                    mma_bf16(o[nt + 1], pl, bh[2], bh[3]);
                } else {
                    mma_f16(o[nt], pa, bh[0], bh[1]);
                    mma_f16(o[nt + 1], pa, bh[2], bh[3]);
                }
            }
        }
        __syncthreads();  // the buffer is staged again two tiles on
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    int qi0 = q0 + rl0, qi1 = q0 + rl1;
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
        int d = nt * 8 + 2 * t;
        if (qi0 < n) {
            float* out = dst + (base + qi0) * D + h * hd;
            if (d < hd) out[d] = o[nt][0] * inv0;
            if (d + 1 < hd) out[d + 1] = o[nt][1] * inv0;
        }
        if (qi1 < n) {
            float* out = dst + (base + qi1) * D + h * hd;
            if (d < hd) out[d] = o[nt][2] * inv1;
            if (d + 1 < hd) out[d + 1] = o[nt][3] * inv1;
        }
    }
}

#define ATTN_MMA3(HDP)                                                                                            \
    extern "C" __global__ void __launch_bounds__(128)                                                            \
        attn_mma3_##HDP(float* dst, const float* qkv, const u16* kh, const u16* kl, const u16* vh,               \
                        const u16* vl, const float* ph, const float* pw, int n, int np, int span, int hd,         \
                        float scale, int D) {                                                                     \
        attn_mma3_body<HDP, true>(dst, qkv, kh, kl, vh, vl, ph, pw, n, np, span, hd, scale, D);                 \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(128)                                                            \
        attn_f16_##HDP(float* dst, const float* qkv, const u16* kh, const u16* kl, const u16* vh, const u16* vl, \
                       const float* ph, const float* pw, int n, int np, int span, int hd, float scale, int D) {   \
        attn_mma3_body<HDP, false>(dst, qkv, kh, kl, vh, vl, ph, pw, n, np, span, hd, scale, D);                \
    }
ATTN_MMA3(32)
ATTN_MMA3(64)
ATTN_MMA3(80)
ATTN_MMA3(128)
