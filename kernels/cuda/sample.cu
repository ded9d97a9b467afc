// Sampling on the device: only token ids go back to the host.

// block_argmax sets bv, bi in every thread of the block to the largest
// element of r[0, V) and its first index (NaN ignored; bi = −1 when r is
// all NaN): each thread keeps its best (value, index), then a tree
// reduction that prefers the larger value and, among equal values, the
// lower index.
__device__ __forceinline__ void block_argmax(const float* r, int V, float& bv, int& bi) {
    __shared__ float sv[32];
    __shared__ int si[32];
    bv = -__int_as_float(0x7f800000);
    bi = -1;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float v = r[i];
        if (v > bv || (bi < 0 && v == bv)) {
            bv = v;
            bi = i;
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (oi >= 0 && (bi < 0 || ov > bv || (ov == bv && oi < bi))) {
            bv = ov;
            bi = oi;
        }
    }
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    if (l == 0) {
        sv[w] = bv;
        si[w] = bi;
    }
    __syncthreads();
    if (w == 0) {
        int nw = blockDim.x >> 5;
        bv = l < nw ? sv[l] : -__int_as_float(0x7f800000);
        bi = l < nw ? si[l] : -1;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (oi >= 0 && (bi < 0 || ov > bv || (ov == bv && oi < bi))) {
                bv = ov;
                bi = oi;
            }
        }
        if (l == 0) {
            sv[0] = bv;
            si[0] = bi;
        }
    }
    __syncthreads();
    bv = sv[0];
    bi = si[0];
}

// ids[row] = the first index of the largest element of x[row] (NaN
// ignored; −1 when the row is all NaN). One block of 1024 threads a row.
extern "C" __global__ void __launch_bounds__(1024) argmax_rows(int* ids, const float* x, int V) {
    float bv;
    int bi;
    block_argmax(x + (long long)blockIdx.x * V, V, bv, bi);
    if (threadIdx.x == 0) ids[blockIdx.x] = bi;
}

// out[2·row] = argmax_rows's index for x[row]; out[2·row+1] = 1 when the row
// holds a non-finite value or an element other than that index within
// margin of the largest (cases where a sampler must see the row itself:
// its ties are decided on rounded probabilities, and NaN is an error),
// else 0. Same block shape as argmax_rows; the check is a second pass over
// the row, which the first left in L2.
extern "C" __global__ void __launch_bounds__(1024) argmax_check_rows(int* out, const float* x, int V, float margin) {
    __shared__ int doubt;
    const float* r = x + (long long)blockIdx.x * V;
    if (threadIdx.x == 0) doubt = 0;
    float bv;
    int bi;
    block_argmax(r, V, bv, bi); // its barriers also order doubt = 0 before the writes below
    float lim = bv - margin;
    bool d = bi < 0;
    for (int i = threadIdx.x; i < V && !d; i += blockDim.x) {
        float v = r[i];
        d = !isfinite(v) || (i != bi && v >= lim);
    }
    if (d) doubt = 1;
    __syncthreads();
    if (threadIdx.x == 0) {
        out[2 * blockIdx.x] = bi;
        out[2 * blockIdx.x + 1] = doubt;
    }
}

// ---- Drawing a token where the logits are (kernels.Drawer) ----
//
// draw_rows follows core/sample's Sampler step by step (penalties and
// bans, softmax, top-p, top-k, the draw in id order) and raises a doubt
// flag wherever the host's roundings (its exponential, its order of
// summation) could decide otherwise: a top-p sum within 1e-6 of the
// cutoff, a probability other than the cutoff's within 5e-7 of it, tokens
// tied at a cutoff whose logits differ, a draw within 1e-6 (times the
// inverse temperature) of a token boundary. The cutoffs are found without
// sorting and without atomics (a shared-memory floating-point atomic is a
// compare-and-swap loop, which the many small probabilities of a row turn
// into a queue): an 8-ary search over the probabilities' bit patterns
// (monotone in the value), each pass summing, per thread and then over the
// block in a fixed order, the mass (top-p) or the count (top-k) at or
// above eight split points.

#define DRAW_EPS 1e-6 // sums: the host's and the device's differ by ~1e-7 relative
#define DRAW_TIE 5e-7 // probabilities: each within 2 ulps of the host's, so a pair's order is sure beyond 4
#define DRAW_K 8

struct DrawShared {
    double red[33];
    double red8[32][DRAW_K];
    int tok, flag;
};

// draw_max: the block's largest v (no NaN), in every thread.
__device__ __forceinline__ float draw_max(float v, DrawShared& s) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) s.red[w] = v;
    __syncthreads();
    float r = s.red[0];
    for (int i = 1; i < (int)(blockDim.x >> 5); i++) r = fmaxf(r, (float)s.red[i]);
    return r;
}

// draw_sum: the block's sum of v in a fixed order, in every thread.
__device__ __forceinline__ double draw_sum(double v, DrawShared& s) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) s.red[w] = v;
    __syncthreads();
    double r = 0;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++) r += s.red[i];
    return r;
}

// draw_exscan: the sum of v over the threads before this one, and the
// block's total in *total.
__device__ __forceinline__ double draw_exscan(double v, DrawShared& s, double* total) {
    int w = threadIdx.x >> 5, l = threadIdx.x & 31, nw = blockDim.x >> 5;
    double inc = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        double y = __shfl_up_sync(0xffffffffu, inc, o);
        if (l >= o) inc += y;
    }
    __syncthreads();
    if (l == 31) s.red[w] = inc;
    __syncthreads();
    if (w == 0) {
        double x = l < nw ? s.red[l] : 0, xi = x;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            double y = __shfl_up_sync(0xffffffffu, xi, o);
            if (l >= o) xi += y;
        }
        s.red[l] = xi - x;
        if (l == 31) s.red[32] = xi;
    }
    __syncthreads();
    *total = s.red[32];
    return s.red[w] + inc - v;
}

// draw_each calls f(i, p[i]) for this thread's elements of p[0, V)
// (strided over the block). Rows of a multiple of four go by 16-byte loads,
// four in flight a thread: one block walks the whole row many times, and
// a loop that waits for each load in turn is bound by L2's latency.
template <typename F>
__device__ __forceinline__ void draw_each(const float* p, int V, F f) {
    int n = blockDim.x;
    if ((V & 3) != 0) {
        for (int i = threadIdx.x; i < V; i += n) f(i, p[i]);
        return;
    }
    const float4* p4 = (const float4*)p;
    int n4 = V >> 2, i = threadIdx.x;
    for (; i + 3 * n < n4; i += 4 * n) {
        float4 a = p4[i], b = p4[i + n], c = p4[i + 2 * n], d = p4[i + 3 * n];
        f(4 * i, a.x), f(4 * i + 1, a.y), f(4 * i + 2, a.z), f(4 * i + 3, a.w);
        int j = 4 * (i + n);
        f(j, b.x), f(j + 1, b.y), f(j + 2, b.z), f(j + 3, b.w);
        j = 4 * (i + 2 * n);
        f(j, c.x), f(j + 1, c.y), f(j + 2, c.z), f(j + 3, c.w);
        j = 4 * (i + 3 * n);
        f(j, d.x), f(j + 1, d.y), f(j + 2, d.z), f(j + 3, d.w);
    }
    for (; i < n4; i += n) {
        float4 a = p4[i];
        f(4 * i, a.x), f(4 * i + 1, a.y), f(4 * i + 2, a.z), f(4 * i + 3, a.w);
    }
}

// draw_chunk calls f(i, p[i]) for i in [lo, hi) in order, by 16-byte
// loads four at a time where lo and hi are multiples of four.
template <typename F>
__device__ __forceinline__ void draw_chunk(const float* p, int lo, int hi, F f) {
    int i = lo;
    if ((lo & 3) == 0) {
        for (; i + 16 <= hi; i += 16) {
            float4 a = *(const float4*)(p + i), b = *(const float4*)(p + i + 4), c = *(const float4*)(p + i + 8), d = *(const float4*)(p + i + 12);
            f(i, a.x), f(i + 1, a.y), f(i + 2, a.z), f(i + 3, a.w), f(i + 4, b.x), f(i + 5, b.y), f(i + 6, b.z), f(i + 7, b.w);
            f(i + 8, c.x), f(i + 9, c.y), f(i + 10, c.z), f(i + 11, c.w), f(i + 12, d.x), f(i + 13, d.y), f(i + 14, d.z), f(i + 15, d.w);
        }
    }
    for (; i < hi; i++) f(i, p[i]);
}

// draw_above sets f[j] to the mass (or with bycount the number) of the
// probabilities p[0, V) that are > 0 with bit patterns ≥ split[j], for
// the DRAW_K splits, summed in a fixed order; in every thread.
__device__ __forceinline__ void draw_above(DrawShared& s, const float* p, int V, const unsigned* split, bool bycount, double* f) {
    double acc[DRAW_K];
#pragma unroll
    for (int j = 0; j < DRAW_K; j++) acc[j] = 0;
    unsigned lo = split[0];
    draw_each(p, V, [&](int, float v) {
        unsigned b = __float_as_uint(v);
        if (v > 0.f && b >= lo) {
            double a = bycount ? 1.0 : (double)v;
#pragma unroll
            for (int j = 0; j < DRAW_K; j++) acc[j] += b >= split[j] ? a : 0.0;
        }
    });
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < DRAW_K; j++) {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
    }
    __syncthreads();
    if (l == 0) {
#pragma unroll
        for (int j = 0; j < DRAW_K; j++) s.red8[w][j] = acc[j];
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < DRAW_K; j++) {
        double r = 0;
        for (int i = 0; i < (int)(blockDim.x >> 5); i++) r += s.red8[i][j];
        f[j] = r;
    }
}

// draw_find returns the largest bit pattern c in [1, top] (top: pmax's)
// whose mass (count) at or above reaches target, with the mass above c in
// *above and at c in *at; 0 when even every positive probability does not
// reach it. Each pass narrows [lo, hi] eightfold.
__device__ __forceinline__ unsigned draw_find(DrawShared& s, const float* p, int V, unsigned top, bool bycount, double target, double* above, double* at) {
    unsigned lo = 1, hi = top; // F(lo) ≥ target is checked by the first pass
    double fhi = 0;            // F(hi + 1): nothing lies above pmax
    unsigned split[DRAW_K];
    double f[DRAW_K];
    bool first = true;
    while (true) {
        unsigned span = hi - lo + 1, step = (span + DRAW_K - 1) / DRAW_K;
        if (span <= DRAW_K) step = 1;
#pragma unroll
        for (int j = 0; j < DRAW_K; j++) split[j] = min(hi + 1, lo + j * step);
        draw_above(s, p, V, split, bycount, f);
        if (first && !(f[0] >= target)) return 0;
        first = false;
        // The last split that reaches target (splits increase, and the
        // first does), and the next split after it with its value: no
        // indexing by a computed position, so the arrays stay in registers.
        unsigned c = split[0], next = hi + 1;
        double fc = f[0], fnext = fhi;
#pragma unroll
        for (int j = 1; j < DRAW_K; j++) {
            if (split[j] <= hi && f[j] >= target) {
                c = split[j];
                fc = f[j];
            }
        }
#pragma unroll
        for (int j = DRAW_K - 1; j >= 1; j--) {
            if (split[j] <= hi && split[j] > c) {
                next = split[j];
                fnext = f[j];
            }
        }
        if (step == 1) {
            *above = next <= hi ? fnext : fhi;
            *at = fc - *above;
            return c;
        }
        lo = c;
        if (next <= hi) {
            hi = next - 1;
            fhi = fnext;
        }
    }
}

// draw_unsure reports whether a cutoff at probability c could fall
// elsewhere on the host: another probability within DRAW_TIE of c, or
// tokens at exactly c whose logits (w) differ.
__device__ bool draw_unsure(DrawShared& s, const float* p, const float* w, int V, float c) {
    float lo = c * (float)(1 - DRAW_TIE), hi = c * (float)(1 + DRAW_TIE);
    float wmax = -__int_as_float(0x7f800000), nwmin = wmax, near = 0;
    draw_each(p, V, [&](int i, float v) {
        if (v == c) {
            wmax = fmaxf(wmax, w[i]);
            nwmin = fmaxf(nwmin, -w[i]);
        } else if (v >= lo && v <= hi) {
            near = 1;
        }
    });
    near = draw_max(near, s);
    wmax = draw_max(wmax, s);
    nwmin = draw_max(nwmin, s);
    return near > 0 || wmax != -nwmin;
}

// out[2r], out[2r+1] = the token drawn from row r of x and the doubt flag;
// spec as kernels.EncodeDraws lays it out; work holds 2V floats a row (the
// shifted logits, then the probabilities). One block of 1024 threads a row.
extern "C" __global__ void __launch_bounds__(1024) draw_rows(int* out, const float* x, const int* spec, float* work, int V) {
    __shared__ DrawShared s;
    const float inf = __int_as_float(0x7f800000);
    int r = blockIdx.x;
    const int* sp = spec + spec[1 + r];
    double u = *(const double*)sp, invT = *(const double*)(sp + 2), topP = *(const double*)(sp + 4);
    int topK = sp[6], n = sp[7];
    const double* subs = (const double*)(sp + 8);
    const int* ids = sp + 8 + 2 * n;
    const float* xr = x + (long long)r * V;
    float* w = work + (long long)r * 2 * V;
    float* p = w + V;
    if (threadIdx.x == 0) {
        s.flag = 0;
        s.tok = 0x7fffffff;
    }
    // Penalties and bans (NaN is −∞, as in the sampler).
    draw_each(xr, V, [&](int i, float v) { w[i] = v != v ? -inf : v; });
    __syncthreads();
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        int id = ids[j];
        if (id >= 0 && id < V) {
            double sub = subs[j];
            w[id] = sub == (double)inf ? -inf : (float)((double)w[id] - sub);
        }
    }
    __syncthreads();
    // Softmax: e = exp(w − max) rounded to float, summed in double; p =
    // float(e · (1/sum)).
    float m = -inf;
    draw_each(w, V, [&](int, float v) { m = fmaxf(m, v); });
    m = draw_max(m, s);
    if (m == -inf || m == inf) { // nothing to draw, or infinite logits: the host decides
        if (threadIdx.x == 0) {
            out[2 * r] = -1;
            out[2 * r + 1] = 1;
        }
        return;
    }
    double sum = 0;
    draw_each(w, V, [&](int i, float v) {
        double d = (double)v - (double)m;
        float e = d < -104 ? 0.f : (float)exp(d);
        p[i] = e;
        sum += (double)e;
    });
    sum = draw_sum(sum, s);
    double inv = 1 / sum;
    float pmax = 0;
    draw_each(p, V, [&](int i, float e) {
        float v = (float)((double)e * inv);
        p[i] = v;
        pmax = fmaxf(pmax, v);
    });
    pmax = draw_max(pmax, s); // also orders the writes of p before the reads below
    // The kept tokens: p ≥ cut, and of those equal to cut only the first
    // `ties` by id when partial (top-k inside a tie).
    float cut = __int_as_float(1); // the smallest positive float: p > 0
    bool partial = false;
    long long ties = 0;
    bool unsure = false;
    if (topK >= V) topK = 0;
    double npos = -1; // tokens kept by top-p (−1: not counted)
    if (topP < 1) {
        double above = 0, at = 0;
        unsigned c = draw_find(s, p, V, __float_as_uint(pmax), false, topP, &above, &at);
        if (c == 0) {
            unsure = true; // the sum never reached top-p: the host keeps every token
        } else {
            cut = __uint_as_float(c);
            unsure = unsure || (topP > 0 && above >= topP * (1 - DRAW_EPS)) || above + at < topP * (1 + DRAW_EPS);
            unsure = unsure || draw_unsure(s, p, w, V, cut);
            double k = 0;
            draw_each(p, V, [&](int, float v) { k += v >= cut ? 1 : 0; });
            npos = draw_sum(k, s);
        }
    }
    if (topK > 0) {
        if (npos < 0) {
            double k = 0;
            draw_each(p, V, [&](int, float v) { k += v >= cut ? 1 : 0; });
            npos = draw_sum(k, s);
        }
        if (npos > topK) {
            double above = 0, at = 0;
            unsigned c = draw_find(s, p, V, __float_as_uint(pmax), true, (double)topK, &above, &at);
            if (c == 0) {
                unsure = true;
            } else {
                cut = __uint_as_float(c);
                ties = (long long)(topK - above);
                partial = ties < (long long)at;
                unsure = unsure || draw_unsure(s, p, w, V, cut);
            }
        }
    }
    // The draw: weights (p/pmax)^(1/T) of the kept tokens in id order,
    // each thread a contiguous range of ids.
    int ch = (V + blockDim.x - 1) / blockDim.x;
    int lo = min(V, (int)threadIdx.x * ch), hi = min(V, lo + ch);
    double tot = 0;
    long long rank0 = 0;
    if (partial) {
        double c = 0;
        draw_chunk(p, lo, hi, [&](int, float v) { c += v == cut ? 1 : 0; });
        rank0 = (long long)draw_exscan(c, s, &tot);
    }
    double own = 0;
    long long rank = rank0;
    draw_chunk(p, lo, hi, [&](int, float v) {
        bool kept = v > cut || (v == cut && (!partial || rank < ties));
        if (v == cut) rank++;
        if (kept) own += invT == 1 ? (double)v : pow((double)v / (double)pmax, invT);
    });
    double before = draw_exscan(own, s, &tot);
    double target = u * tot, delta = tot * DRAW_EPS * fmax(1.0, invT);
    if (own > 0 && before <= target && target < before + own) {
        double cum = before;
        rank = rank0;
        int tok = -1;
        for (int i = lo; i < hi && tok < 0; i++) {
            float v = p[i];
            bool kept = v > cut || (v == cut && (!partial || rank < ties));
            if (v == cut) rank++;
            if (!kept) continue;
            double cb = cum;
            cum += invT == 1 ? (double)v : pow((double)v / (double)pmax, invT);
            if (cum > target) {
                tok = i;
                if (target - cb < delta || cum - target < delta) s.flag = 1;
            }
        }
        if (tok < 0) s.flag = 1;
        else atomicMin(&s.tok, tok);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int tok = s.tok == 0x7fffffff ? -1 : s.tok;
        out[2 * r] = tok;
        out[2 * r + 1] = (unsure || s.flag || tok < 0) ? 1 : 0;
    }
}
