// ================================================================ A-RWKV ops
// The 2-D token shift (depthwise 3×3 convolution, Lerp), the row flip and
// per-head gate mix of the bidirectional WKV, and the mean over rows of the
// pooling. Element-wise, grid-stride; each thread's consecutive elements
// run along channels, so warps read and write contiguous memory.

// dst[p][c] = Σ_{di,dj} k[c][(di+1)·3+dj+1]·x[neighbour (di,dj) of p][c] over
// the pixels p of n images of h×w (rows ordered image, row, column).
extern "C" __global__ void dwconv3(float* __restrict__ dst, const float* __restrict__ x, const float* __restrict__ k,
                                   int rows, int C, int h, int w) {
    long long n = (long long)rows * C;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n;
         e += (long long)gridDim.x * blockDim.x) {
        int p = (int)(e / C), c = (int)(e % C);
        int hw = h * w, img = p / hw, pix = p % hw, i = pix / w, j = pix % w;
        const float* kc = k + (long long)c * 9;
        float s = 0.0f;
#pragma unroll
        for (int di = -1; di <= 1; di++) {
            int ii = i + di;
            if (ii < 0 || ii >= h) continue;
#pragma unroll
            for (int dj = -1; dj <= 1; dj++) {
                int jj = j + dj;
                if (jj < 0 || jj >= w) continue;
                long long q = (long long)img * hw + ii * w + jj;
                s += kc[(di + 1) * 3 + dj + 1] * x[q * C + c];
            }
        }
        dst[e] = s;
    }
}

// dst[m][t][c] = x[t][c] + d[t][c]·mix[m][c].
extern "C" __global__ void lerp(MixArgs m, int nmix, const float* __restrict__ x, const float* __restrict__ d, int T,
                                int C) {
    long long n = (long long)T * C;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        float xv = x[i], dv = d[i];
        for (int k = 0; k < nmix; k++) m.dst[k][i] = xv + dv * m.mix[k][c];
    }
}

// dst row t = x row (g + n − 1 − (t − g)), g = t − t mod n.
extern "C" __global__ void fliprows(float* __restrict__ dst, const float* __restrict__ x, int rows, int C, int grp) {
    long long n = (long long)rows * C;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n;
         e += (long long)gridDim.x * blockDim.x) {
        int t = (int)(e / C), c = (int)(e % C);
        int g = t - t % grp;
        dst[e] = x[(long long)(g + grp - 1 - (t - g)) * C + c];
    }
}

// dst = g·a + (1 − g)·b with g [T, H] per row and head (C/H channels).
extern "C" __global__ void gatemix(float* __restrict__ dst, const float* __restrict__ a, const float* __restrict__ b,
                                   const float* __restrict__ g, int T, int C, int H) {
    long long n = (long long)T * C;
    int N = C / H;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n;
         e += (long long)gridDim.x * blockDim.x) {
        int t = (int)(e / C), c = (int)(e % C);
        float gv = g[(long long)t * H + c / N];
        dst[e] = gv * a[e] + (1.0f - gv) * b[e];
    }
}

// dst[i][c] = mean of x[i·n .. i·n+n−1][c], summed in double.
extern "C" __global__ void meanrows(float* __restrict__ dst, const float* __restrict__ x, int m, int n, int C) {
    long long total = (long long)m * C;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        int i = (int)(e / C), c = (int)(e % C);
        const float* xp = x + (long long)i * n * C + c;
        double s = 0.0;
        for (int t = 0; t < n; t++) s += xp[(long long)t * C];
        dst[e] = (float)(s / n);
    }
}
