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
// (monotone in the value), each pass summing, per thread, over the block
// and over the row's blocks, in a fixed order, the mass (top-p) or the
// count (top-k) at or above eight split points. A row is split over up to
// 64 blocks (DrawGrid) that exchange their partial values at grid
// barriers, so every block computes the same decisions.

#define DRAW_EPS 1e-6 // sums: the host's and the device's differ by ~1e-7 relative
#define DRAW_TIE 5e-7 // probabilities: each within 2 ulps of the host's, so a pair's order is sure beyond 4
#define DRAW_K 8

struct DrawShared {
    double red[33];
    double red8[32][DRAW_K];
    double all[64 * DRAW_K]; // the blocks' values of an exchange (DRAW_MAXG × DRAW_K)
    double fin[DRAW_K];      // their combination
    int tok, flag;
};

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

// The work tensor: for each row the shifted logits w [V], the
// probabilities p [V] and DRAW_PART floats of partial values (two buffers,
// for alternating passes, of DRAW_MAXG × DRAW_K doubles); after all rows,
// each row's three grid-barrier words (arrivals, generation, poisoned),
// which the host zeroes before every launch (kernels.DrawWork is the Go
// side of this).
#define DRAW_MAXG 64
#define DRAW_PART (2 * 2 * DRAW_MAXG * DRAW_K)

// DrawGrid is a row's blocks working together: block g of G owns the ids
// [lo, hi), and exchanges partial values through global memory at grid
// barriers. All blocks of a row are resident at once (the host launches
// at most one block a multiprocessor), so a block can wait for the others.
struct DrawGrid {
    double* part;
    unsigned* bar;
    int pass, G, g, lo, hi;
    bool timedOut; // thread 0's: a barrier gave up waiting
};

// draw_sync is a barrier over the row's blocks (sense by generation): a
// block's writes before it are visible to every block after it. The wait
// is bounded (2^20 polls, about a second): a barrier that never fills
// (blocks not all resident, say under an MPS limit on multiprocessors)
// must not hang the device. A block that gives up marks the row poisoned
// (its third barrier word), so that whichever block writes the result
// flags it for the host, and skips the barriers after.
__device__ __forceinline__ void draw_sync(DrawGrid& gr) {
    __syncthreads();
    if (gr.G > 1 && threadIdx.x == 0 && !gr.timedOut) {
        volatile unsigned* vb = gr.bar;
        unsigned gen = vb[1];
        __threadfence();
        if (atomicAdd(gr.bar, 1u) == (unsigned)gr.G - 1) {
            atomicExch(gr.bar, 0u);
            __threadfence();
            atomicAdd(gr.bar + 1, 1u);
        } else {
            for (int k = 0; vb[1] == gen; k++) {
                if (k == (1 << 20)) {
                    atomicExch(gr.bar + 2, 1u);
                    gr.timedOut = true;
                    break;
                }
            }
        }
        __threadfence();
    }
    __syncthreads();
}

// draw_exchange reduces this thread's v[0, DRAW_K) over the block (sum,
// or max when max), publishes the block's values, waits for every block,
// and sets f to the values over all blocks, combined block by block in
// index order (the same in every thread of every block). It returns the
// blocks' values ([G][DRAW_K], in shared memory until the next exchange).
__device__ __forceinline__ const double* draw_exchange(DrawShared& s, DrawGrid& gr, double* v, double* f, bool max) {
    int w = threadIdx.x >> 5, l = threadIdx.x & 31, nw = blockDim.x >> 5;
#pragma unroll
    for (int j = 0; j < DRAW_K; j++) {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            double y = __shfl_xor_sync(0xffffffffu, v[j], o);
            v[j] = max ? fmax(v[j], y) : v[j] + y;
        }
    }
    __syncthreads();
    if (l == 0) {
#pragma unroll
        for (int j = 0; j < DRAW_K; j++) s.red8[w][j] = v[j];
    }
    __syncthreads();
    double* buf = gr.part + (gr.pass & 1) * DRAW_MAXG * DRAW_K;
    gr.pass++;
    if (threadIdx.x < DRAW_K) {
        int j = threadIdx.x;
        double r = s.red8[0][j];
        for (int i = 1; i < nw; i++) r = max ? fmax(r, s.red8[i][j]) : r + s.red8[i][j];
        buf[gr.g * DRAW_K + j] = r;
        __threadfence(); // the writers' own fence: published before thread 0 arrives
    }
    draw_sync(gr);
    // One load a thread, all in flight at once (a loop of dependent loads
    // from L2 would cost a round trip per block and value), then the
    // values combined from shared memory in block order.
    if (threadIdx.x < gr.G * DRAW_K) s.all[threadIdx.x] = __ldcg(buf + threadIdx.x);
    __syncthreads();
    if (threadIdx.x < DRAW_K) { // DRAW_K threads combine, the rest read their results
        int j = threadIdx.x;
        double r = s.all[j];
        for (int b = 1; b < gr.G; b++) {
            double y = s.all[b * DRAW_K + j];
            r = max ? fmax(r, y) : r + y;
        }
        s.fin[j] = r;
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < DRAW_K; j++) f[j] = s.fin[j];
    return s.all;
}

// draw_slice calls f(i, p[i]) for this thread's ids of the block's
// [lo, hi) (strided over the block), four loads in flight a thread.
template <typename F>
__device__ __forceinline__ void draw_slice(const float* p, int lo, int hi, F f) {
    int n = blockDim.x, i = lo + threadIdx.x;
    for (; i + 3 * n < hi; i += 4 * n) {
        float a = p[i], b = p[i + n], c = p[i + 2 * n], d = p[i + 3 * n];
        f(i, a), f(i + n, b), f(i + 2 * n, c), f(i + 3 * n, d);
    }
    for (; i < hi; i += n) f(i, p[i]);
}

// draw_above sets f[j] to the mass (or with bycount the number) of the
// row's probabilities that are > 0 with bit patterns ≥ split[j], for the
// DRAW_K splits; the same in every thread of every block.
__device__ __forceinline__ void draw_above(DrawShared& s, DrawGrid& gr, const float* p, const unsigned* split, bool bycount, double* f) {
    double acc[DRAW_K];
#pragma unroll
    for (int j = 0; j < DRAW_K; j++) acc[j] = 0;
    unsigned lo = split[0];
    draw_slice(p, gr.lo, gr.hi, [&](int, float v) {
        unsigned b = __float_as_uint(v);
        if (v > 0.f && b >= lo) {
            double a = bycount ? 1.0 : (double)v;
#pragma unroll
            for (int j = 0; j < DRAW_K; j++) acc[j] += b >= split[j] ? a : 0.0;
        }
    });
    draw_exchange(s, gr, acc, f, false);
}

// draw_find returns the largest bit pattern c in [1, top] (top: pmax's)
// whose mass (count) at or above reaches target, with the mass above c in
// *above and at c in *at; 0 when even every positive probability does not
// reach it. Each pass narrows [lo, hi] eightfold.
__device__ __forceinline__ unsigned draw_find(DrawShared& s, DrawGrid& gr, const float* p, unsigned top, bool bycount, double target, double* above, double* at) {
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
        draw_above(s, gr, p, split, bycount, f);
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
__device__ __forceinline__ bool draw_unsure(DrawShared& s, DrawGrid& gr, const float* p, const float* w, float c) {
    float lo = c * (float)(1 - DRAW_TIE), hi = c * (float)(1 + DRAW_TIE);
    const double ninf = -(double)__int_as_float(0x7f800000);
    double v[DRAW_K] = {ninf, ninf, 0, 0, 0, 0, 0, 0}, f[DRAW_K];
    draw_slice(p, gr.lo, gr.hi, [&](int i, float x) {
        if (x == c) {
            v[0] = fmax(v[0], (double)w[i]);
            v[1] = fmax(v[1], -(double)w[i]);
        } else if (x >= lo && x <= hi) {
            v[2] = 1;
        }
    });
    draw_exchange(s, gr, v, f, true);
    return f[2] > 0 || f[0] != -f[1];
}

// out[2r], out[2r+1] = the token drawn from row r of x and the doubt flag;
// spec as kernels.EncodeDraws lays it out; work as described at DRAW_PART,
// its barrier words zero. Grid (G, rows) of 1024-thread blocks: a row's G
// blocks split its ids and meet at grid barriers (G ≤ DRAW_MAXG, and the
// host keeps G × rows within the multiprocessors).
extern "C" __global__ void __launch_bounds__(1024) draw_rows(int* out, const float* x, const int* spec, float* work, int V) {
    __shared__ DrawShared s;
    const float inf = __int_as_float(0x7f800000);
    int r = blockIdx.y;
    const int* sp = spec + spec[1 + r];
    double u = *(const double*)sp, invT = *(const double*)(sp + 2), topP = *(const double*)(sp + 4);
    int topK = sp[6], n = sp[7];
    const double* subs = (const double*)(sp + 8);
    const int* ids = sp + 8 + 2 * n;
    const float* xr = x + (long long)r * V;
    long long stride = 2 * (long long)V + DRAW_PART;
    float* w = work + r * stride;
    float* p = w + V;
    DrawGrid gr;
    gr.part = (double*)(p + V);
    gr.bar = (unsigned*)(work + gridDim.y * stride) + 3 * r;
    gr.pass = 0;
    gr.timedOut = false;
    gr.G = gridDim.x;
    gr.g = blockIdx.x;
    int L = (V + gr.G - 1) / gr.G;
    gr.lo = min(V, gr.g * L);
    gr.hi = min(V, gr.lo + L);
    if (threadIdx.x == 0) {
        s.flag = 0;
        s.tok = 0x7fffffff;
    }
    double v[DRAW_K], f[DRAW_K];
    // Penalties and bans (NaN is −∞, as in the sampler), each block its ids.
    draw_slice(xr, gr.lo, gr.hi, [&](int i, float x) { w[i] = x != x ? -inf : x; });
    __syncthreads();
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        int id = ids[j];
        if (id >= gr.lo && id < gr.hi) {
            double sub = subs[j];
            w[id] = sub == (double)inf ? -inf : (float)((double)w[id] - sub);
        }
    }
    __syncthreads();
    // Softmax: e = exp(w − max) rounded to float, summed in double; p =
    // float(e · (1/sum)).
    float m = -inf;
    draw_slice(w, gr.lo, gr.hi, [&](int, float x) { m = fmaxf(m, x); });
#pragma unroll
    for (int j = 0; j < DRAW_K; j++) v[j] = j == 0 ? (double)m : -(double)inf;
    draw_exchange(s, gr, v, f, true);
    m = (float)f[0];
    if (m == -inf || m == inf) { // nothing to draw, or infinite logits: the host decides
        if (gr.g == 0 && threadIdx.x == 0) {
            out[2 * r] = -1;
            out[2 * r + 1] = 1;
        }
        return;
    }
    double sum = 0;
    draw_slice(w, gr.lo, gr.hi, [&](int i, float x) {
        double d = (double)x - (double)m;
        float e = d < -104 ? 0.f : (float)exp(d);
        p[i] = e;
        sum += (double)e;
    });
#pragma unroll
    for (int j = 0; j < DRAW_K; j++) v[j] = j == 0 ? sum : 0;
    draw_exchange(s, gr, v, f, false);
    double inv = 1 / f[0];
    // The largest e is exp(0) = 1 exactly, so the largest p is float(inv).
    float pmax = (float)inv;
    draw_slice(p, gr.lo, gr.hi, [&](int i, float e) { p[i] = (float)((double)e * inv); });
    __syncthreads();
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
        unsigned c = draw_find(s, gr, p, __float_as_uint(pmax), false, topP, &above, &at);
        if (c == 0) {
            unsure = true; // the sum never reached top-p: the host keeps every token
        } else {
            cut = __uint_as_float(c);
            unsure = unsure || (topP > 0 && above >= topP * (1 - DRAW_EPS)) || above + at < topP * (1 + DRAW_EPS);
            unsure = unsure || draw_unsure(s, gr, p, w, cut);
        }
    }
    if (topK > 0) {
        double k = 0;
        draw_slice(p, gr.lo, gr.hi, [&](int, float x) { k += x >= cut ? 1 : 0; });
#pragma unroll
        for (int j = 0; j < DRAW_K; j++) v[j] = j == 0 ? k : 0;
        draw_exchange(s, gr, v, f, false);
        npos = f[0];
        if (npos > topK) {
            double above = 0, at = 0;
            unsigned c = draw_find(s, gr, p, __float_as_uint(pmax), true, (double)topK, &above, &at);
            if (c == 0) {
                unsure = true;
            } else {
                cut = __uint_as_float(c);
                ties = (long long)(topK - above);
                partial = ties < (long long)at;
                unsure = unsure || draw_unsure(s, gr, p, w, cut);
            }
        }
    }
    // The draw: weights (p/pmax)^(1/T) of the kept tokens in id order.
    // Each block sums its ids (and counts its ties at the cut); every
    // block then knows where each block's range starts, and the block
    // whose range holds u·total finds the token: each of its threads a
    // contiguous run of ids.
    int ch = (gr.hi - gr.lo + blockDim.x - 1) / blockDim.x;
    int lo = min(gr.hi, gr.lo + (int)threadIdx.x * ch), hi = min(gr.hi, lo + ch);
    double tc = 0;
    if (partial)
        for (int i = lo; i < hi; i++) tc += p[i] == cut ? 1 : 0;
    double tot = 0;
    long long rank0 = partial ? (long long)draw_exscan(tc, s, &tot) : 0; // ties before this thread, in the block
#pragma unroll
    for (int j = 0; j < DRAW_K; j++) v[j] = j == 0 ? tc : 0;
    const double* blocks = partial ? draw_exchange(s, gr, v, f, false) : nullptr;
    for (int b = 0; partial && b < gr.g; b++) rank0 += (long long)blocks[b * DRAW_K];
    double own = 0;
    long long rank = rank0;
    for (int i = lo; i < hi; i++) {
        float x = p[i];
        bool kept = x > cut || (x == cut && (!partial || rank < ties));
        if (x == cut) rank++;
        if (kept) own += invT == 1 ? (double)x : pow((double)x / (double)pmax, invT);
    }
    double bsum = 0;
    double before = draw_exscan(own, s, &bsum); // within the block
#pragma unroll
    for (int j = 0; j < DRAW_K; j++) v[j] = j == 0 ? own : 0;
    blocks = draw_exchange(s, gr, v, f, false);
    double total = f[0], start = 0; // the grid's total, this block's start
    for (int b = 0; b < gr.g; b++) start += blocks[b * DRAW_K];
    double target = u * total, delta = total * DRAW_EPS * fmax(1.0, invT);
    // Which block holds the target (the same answer in every block: the
    // same sums in the same order); none, when rounding left it past the
    // last: the host decides.
    int holder = -1;
    {
        double acc = 0;
        for (int b = 0; b < gr.G && holder < 0; b++) {
            double y = blocks[b * DRAW_K];
            if (y > 0 && acc <= target && target < acc + y) holder = b;
            acc += y;
        }
    }
    if (holder < 0) {
        if (gr.g == 0 && threadIdx.x == 0) {
            out[2 * r] = -1;
            out[2 * r + 1] = 1;
        }
        return;
    }
    if (gr.g != holder) return;
    before += start;
    if (own > 0 && before <= target && target < before + own) {
        double cum = before;
        rank = rank0;
        int tok = -1;
        for (int i = lo; i < hi && tok < 0; i++) {
            float x = p[i];
            bool kept = x > cut || (x == cut && (!partial || rank < ties));
            if (x == cut) rank++;
            if (!kept) continue;
            double cb = cum;
            cum += invT == 1 ? (double)x : pow((double)x / (double)pmax, invT);
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
        bool poisoned = gr.timedOut || ((volatile unsigned*)gr.bar)[2] != 0;
        out[2 * r + 1] = (unsure || s.flag || tok < 0 || poisoned) ? 1 : 0;
    }
}
