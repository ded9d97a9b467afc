// Sampling on the device: only token ids go back to the host.

// ids[row] = the first index of the largest element of x[row] (NaN
// ignored; −1 when the row is all NaN). One block of 1024 threads a row:
// each thread keeps its best (value, index), then a tree reduction that
// prefers the larger value and, among equal values, the lower index.
extern "C" __global__ void __launch_bounds__(1024) argmax_rows(int* ids, const float* x, int V) {
    __shared__ float sv[32];
    __shared__ int si[32];
    const float* r = x + (long long)blockIdx.x * V;
    float bv = -__int_as_float(0x7f800000);
    int bi = -1;
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
        if (l == 0) ids[blockIdx.x] = bi;
    }
}
