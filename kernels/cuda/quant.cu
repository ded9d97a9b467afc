// Int8 weights (kernels.I8): per-output-channel scales, activations fp32.
// The one-token products read the int8 values (8 bytes a lane, half the
// traffic of bf16) and scale each output; longer inputs widen the int8
// values to bf16 (exact: |q| <= 127 has 7 significant bits) for cuBLAS and
// scale the product's columns afterwards.

GEMV(gemv_i8_1, 4, 1) GEMV(gemv_i8_2, 4, 2) GEMV(gemv_i8_3, 4, 3) GEMV(gemv_i8_4, 4, 4)

LINBATCH(linbatch_i8_f32, 4, 0) LINBATCH(linbatch_i8_f16, 4, 1) LINBATCH(linbatch_i8_bf16, 4, 2)

// dst[i] = bf16(q[i]) for i < n.
extern "C" __global__ void i8_to_bf16(u16* dst, const signed char* q, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        dst[i] = f32_to_bf16((float)q[i]);
}

// dst[t][c] = (acc ? dst[t][c] : 0) + src[t][c]·scale[c] for t < T, c < N.
extern "C" __global__ void scale_cols(float* dst, const float* src, const float* scale, int T, int N, int acc) {
    long long n = (long long)T * N;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float v = src[i] * scale[i % N];
        dst[i] = acc ? dst[i] + v : v;
    }
}
