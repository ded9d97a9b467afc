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
