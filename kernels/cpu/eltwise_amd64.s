//go:build !purego

#include "textflag.h"
#include "expf_amd64.h"

// func prep7AVX2(k, v, vf, w, a, b, w0, a0, kk, ka, zv, v0 *float32, n int)
// prep7Generic on one row of n channels (a positive multiple of 64, heads
// of 64); zv == nil means no value residual (vf = v).
TEXT ·prep7AVX2(SB), NOSPLIT, $0-104
	MOVQ k+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ vf+16(FP), R8
	MOVQ w+24(FP), R9
	MOVQ a+32(FP), R10
	MOVQ b+40(FP), R11
	MOVQ w0+48(FP), R12
	MOVQ a0+56(FP), R13
	MOVQ kk+64(FP), R14
	MOVQ ka+72(FP), R15
	MOVQ zv+80(FP), AX
	MOVQ v0+88(FP), BX
	XORQ CX, CX // channel index
head:
	LEAQ 64(CX), DX // the head's end
	// ‖k ⊙ k_k‖² over the head, in float64.
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
norm:
	VMOVUPS (SI)(CX*4), Y0
	VMULPS (R14)(CX*4), Y0, Y0
	VCVTPS2PD X0, Y1
	VEXTRACTF128 $1, Y0, X2
	VCVTPS2PD X2, Y2
	VFMADD231PD Y1, Y1, Y4
	VFMADD231PD Y2, Y2, Y5
	ADDQ $8, CX
	CMPQ CX, DX
	JLT norm
	SUBQ $64, CX
	VADDPD Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VADDPD X5, X4, X4
	VUNPCKHPD X4, X4, X5
	VADDSD X5, X4, X4
	VSQRTSD X4, X4, X4
	VMAXSD ·expTab+EXP_TINY64(SB), X4, X4
	VMOVSD ·expTab+EXP_ONE64(SB), X5
	VDIVSD X4, X5, X5
	VCVTSD2SS X5, X5, X5
	VBROADCASTSS X5, Y15 // 1 / max(‖k̂‖, 1e-12)
elem:
	VMOVUPS (SI)(CX*4), Y12       // k
	VMULPS (R14)(CX*4), Y12, Y14
	VMULPS Y15, Y14, Y14          // kh = k ⊙ k_k / ‖·‖
	VMOVUPS (R13)(CX*4), Y0
	VADDPS (R10)(CX*4), Y0, Y0
	SIGMOID(Y0, Y1, Y2, Y3, Y13)  // α = σ(a0 + a)
	VXORPS ·expTab+EXP_SIGN(SB), Y14, Y1
	VMOVUPS Y1, (R10)(CX*4)       // a = −kh
	VMULPS Y13, Y14, Y1
	VMOVUPS Y1, (R11)(CX*4)       // b = kh·α
	VSUBPS ·expTab+EXP_ONE(SB), Y13, Y1
	VMULPS (R15)(CX*4), Y1, Y1
	VADDPS ·expTab+EXP_ONE(SB), Y1, Y1
	VMULPS Y12, Y1, Y1
	VMOVUPS Y1, (SI)(CX*4)        // k ⊙= 1 + (α − 1)·k_a
	VMOVUPS (R12)(CX*4), Y0
	VADDPS (R9)(CX*4), Y0, Y0
	SIGMOID(Y0, Y1, Y2, Y3, Y13)
	VMULPS ·expTab+EXP_NEGDECAY(SB), Y13, Y0
	EXPNEG(Y0, Y1, Y2, Y3)
	VMOVUPS Y3, (R9)(CX*4)        // w = exp(−e^−½·σ(w0 + w))
	VMOVUPS (DI)(CX*4), Y1        // v
	TESTQ AX, AX
	JZ first
	VMOVUPS (BX)(CX*4), Y0
	VADDPS (AX)(CX*4), Y0, Y0
	SIGMOID(Y0, Y2, Y3, Y4, Y13)
	VMOVUPS (R8)(CX*4), Y2
	VSUBPS Y1, Y2, Y2
	VMULPS Y13, Y2, Y2
	VADDPS Y2, Y1, Y1
	VMOVUPS Y1, (DI)(CX*4)        // v += (v_first − v)·σ(v0 + zv)
	JMP next
first:
	VMOVUPS Y1, (R8)(CX*4)        // v_first = v
next:
	ADDQ $8, CX
	CMPQ CX, DX
	JLT elem
	CMPQ CX, n+96(FP)
	JLT head
	VZEROUPPER
	RET

// func sigmoidAVX2(dst, x *float32, n int)
// dst[i] = σ(x[i]) for i < n, a positive multiple of 8.
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
sloop:
	VMOVUPS (SI), Y0
	SIGMOID(Y0, Y1, Y2, Y3, Y4)
	VMOVUPS Y4, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ sloop
	VZEROUPPER
	RET

// func reluSquaredAVX2(dst, x *float32, n int)
// dst[i] = max(x[i], 0)² for i < n, a positive multiple of 8.
TEXT ·reluSquaredAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VXORPS Y7, Y7, Y7
rloop:
	VMAXPS (SI), Y7, Y0
	VMULPS Y0, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ rloop
	VZEROUPPER
	RET

// func dwconvAVX2(out *float32, src *[9]*float32, kt *float32, n int)
// out[c] = Σ_t kt's tap t for channel c · src[t][c] for c < n (a positive
// multiple of 8): one output pixel of the 3×3 depthwise convolution, from
// its nine input pixels (a zero row where the image ends). kt holds the
// kernels interleaved in groups of 8 channels, [n/8][9][8].
TEXT ·dwconvAVX2(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ src+8(FP), AX
	MOVQ kt+16(FP), SI
	MOVQ n+24(FP), DX
	SHLQ $2, DX
	MOVQ 0(AX), R8
	MOVQ 8(AX), R9
	MOVQ 16(AX), R10
	MOVQ 24(AX), R11
	MOVQ 32(AX), R12
	MOVQ 40(AX), R13
	MOVQ 48(AX), R14
	MOVQ 56(AX), R15
	MOVQ 64(AX), BX
	XORQ CX, CX
	LEAQ -128(DX), AX
dw32:
	CMPQ CX, AX
	JGT dw8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VMOVUPS 0(R8)(CX*1), Y4
	VMOVUPS 32(R8)(CX*1), Y5
	VMOVUPS 64(R8)(CX*1), Y6
	VMOVUPS 96(R8)(CX*1), Y7
	VFMADD231PS 0(SI), Y4, Y0
	VFMADD231PS 288(SI), Y5, Y1
	VFMADD231PS 576(SI), Y6, Y2
	VFMADD231PS 864(SI), Y7, Y3
	VMOVUPS 0(R9)(CX*1), Y4
	VMOVUPS 32(R9)(CX*1), Y5
	VMOVUPS 64(R9)(CX*1), Y6
	VMOVUPS 96(R9)(CX*1), Y7
	VFMADD231PS 32(SI), Y4, Y0
	VFMADD231PS 320(SI), Y5, Y1
	VFMADD231PS 608(SI), Y6, Y2
	VFMADD231PS 896(SI), Y7, Y3
	VMOVUPS 0(R10)(CX*1), Y4
	VMOVUPS 32(R10)(CX*1), Y5
	VMOVUPS 64(R10)(CX*1), Y6
	VMOVUPS 96(R10)(CX*1), Y7
	VFMADD231PS 64(SI), Y4, Y0
	VFMADD231PS 352(SI), Y5, Y1
	VFMADD231PS 640(SI), Y6, Y2
	VFMADD231PS 928(SI), Y7, Y3
	VMOVUPS 0(R11)(CX*1), Y4
	VMOVUPS 32(R11)(CX*1), Y5
	VMOVUPS 64(R11)(CX*1), Y6
	VMOVUPS 96(R11)(CX*1), Y7
	VFMADD231PS 96(SI), Y4, Y0
	VFMADD231PS 384(SI), Y5, Y1
	VFMADD231PS 672(SI), Y6, Y2
	VFMADD231PS 960(SI), Y7, Y3
	VMOVUPS 0(R12)(CX*1), Y4
	VMOVUPS 32(R12)(CX*1), Y5
	VMOVUPS 64(R12)(CX*1), Y6
	VMOVUPS 96(R12)(CX*1), Y7
	VFMADD231PS 128(SI), Y4, Y0
	VFMADD231PS 416(SI), Y5, Y1
	VFMADD231PS 704(SI), Y6, Y2
	VFMADD231PS 992(SI), Y7, Y3
	VMOVUPS 0(R13)(CX*1), Y4
	VMOVUPS 32(R13)(CX*1), Y5
	VMOVUPS 64(R13)(CX*1), Y6
	VMOVUPS 96(R13)(CX*1), Y7
	VFMADD231PS 160(SI), Y4, Y0
	VFMADD231PS 448(SI), Y5, Y1
	VFMADD231PS 736(SI), Y6, Y2
	VFMADD231PS 1024(SI), Y7, Y3
	VMOVUPS 0(R14)(CX*1), Y4
	VMOVUPS 32(R14)(CX*1), Y5
	VMOVUPS 64(R14)(CX*1), Y6
	VMOVUPS 96(R14)(CX*1), Y7
	VFMADD231PS 192(SI), Y4, Y0
	VFMADD231PS 480(SI), Y5, Y1
	VFMADD231PS 768(SI), Y6, Y2
	VFMADD231PS 1056(SI), Y7, Y3
	VMOVUPS 0(R15)(CX*1), Y4
	VMOVUPS 32(R15)(CX*1), Y5
	VMOVUPS 64(R15)(CX*1), Y6
	VMOVUPS 96(R15)(CX*1), Y7
	VFMADD231PS 224(SI), Y4, Y0
	VFMADD231PS 512(SI), Y5, Y1
	VFMADD231PS 800(SI), Y6, Y2
	VFMADD231PS 1088(SI), Y7, Y3
	VMOVUPS 0(BX)(CX*1), Y4
	VMOVUPS 32(BX)(CX*1), Y5
	VMOVUPS 64(BX)(CX*1), Y6
	VMOVUPS 96(BX)(CX*1), Y7
	VFMADD231PS 256(SI), Y4, Y0
	VFMADD231PS 544(SI), Y5, Y1
	VFMADD231PS 832(SI), Y6, Y2
	VFMADD231PS 1120(SI), Y7, Y3
	VMOVUPS Y0, 0(DI)(CX*1)
	VMOVUPS Y1, 32(DI)(CX*1)
	VMOVUPS Y2, 64(DI)(CX*1)
	VMOVUPS Y3, 96(DI)(CX*1)
	ADDQ $128, CX
	ADDQ $1152, SI
	JMP dw32
dw8:
	CMPQ CX, DX
	JGE dwdone
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VMOVUPS (R8)(CX*1), Y4
	VFMADD231PS 0(SI), Y4, Y0
	VMOVUPS (R9)(CX*1), Y5
	VFMADD231PS 32(SI), Y5, Y1
	VMOVUPS (R10)(CX*1), Y4
	VFMADD231PS 64(SI), Y4, Y0
	VMOVUPS (R11)(CX*1), Y5
	VFMADD231PS 96(SI), Y5, Y1
	VMOVUPS (R12)(CX*1), Y4
	VFMADD231PS 128(SI), Y4, Y0
	VMOVUPS (R13)(CX*1), Y5
	VFMADD231PS 160(SI), Y5, Y1
	VMOVUPS (R14)(CX*1), Y4
	VFMADD231PS 192(SI), Y4, Y0
	VMOVUPS (R15)(CX*1), Y5
	VFMADD231PS 224(SI), Y5, Y1
	VMOVUPS (BX)(CX*1), Y4
	VFMADD231PS 256(SI), Y4, Y0
	VADDPS Y1, Y0, Y0
	VMOVUPS Y0, (DI)(CX*1)
	ADDQ $32, CX
	ADDQ $288, SI
	JMP dw8
dwdone:
	VZEROUPPER
	RET

// func lerpAVX2(dst, x, d, m *float32, n int)
// dst[i] = x[i] + d[i]·m[i] for i < n, a positive multiple of 8.
TEXT ·lerpAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ d+16(FP), DX
	MOVQ m+24(FP), BX
	MOVQ n+32(FP), CX
	SHLQ $2, CX
	XORQ AX, AX
lerp:
	VMOVUPS (DX)(AX*1), Y0
	VMULPS (BX)(AX*1), Y0, Y0
	VADDPS (SI)(AX*1), Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ $32, AX
	CMPQ AX, CX
	JLT lerp
	VZEROUPPER
	RET

// func layerNormAVX2(dst, x, w, b *float32, n int, eps float32)
// layerNormGeneric for n a positive multiple of 8: the mean and variance
// summed in float64, the output in float32; w == nil means no affine.
TEXT ·layerNormAVX2(SB), NOSPLIT, $0-44
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), R8
	MOVQ b+24(FP), R9
	MOVQ n+32(FP), CX
	SHLQ $2, CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	XORQ AX, AX
lnsum:
	VCVTPS2PD (SI)(AX*1), Y2
	VCVTPS2PD 16(SI)(AX*1), Y3
	VADDPD Y2, Y0, Y0
	VADDPD Y3, Y1, Y1
	ADDQ $32, AX
	CMPQ AX, CX
	JLT lnsum
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VUNPCKHPD X0, X0, X1
	VADDSD X1, X0, X0
	MOVQ n+32(FP), DX
	VCVTSI2SDQ DX, X7, X7           // n
	VDIVSD X7, X0, X0               // mean
	VBROADCASTSD X0, Y6
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	XORQ AX, AX
lnvar:
	VCVTPS2PD (SI)(AX*1), Y2
	VCVTPS2PD 16(SI)(AX*1), Y3
	VSUBPD Y6, Y2, Y2
	VSUBPD Y6, Y3, Y3
	VFMADD231PD Y2, Y2, Y0
	VFMADD231PD Y3, Y3, Y1
	ADDQ $32, AX
	CMPQ AX, CX
	JLT lnvar
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VUNPCKHPD X0, X0, X1
	VADDSD X1, X0, X0
	VDIVSD X7, X0, X0               // variance
	VCVTSS2SD eps+40(FP), X1, X1
	VADDSD X1, X0, X0
	VSQRTSD X0, X0, X0
	VMOVSD ·expTab+EXP_ONE64(SB), X1
	VDIVSD X0, X1, X1               // 1/√(var + eps)
	VCVTSD2SS X1, X1, X1
	VBROADCASTSS X1, Y5             // s
	VCVTSD2SS X6, X6, X6
	VBROADCASTSS X6, Y4             // m
	XORQ AX, AX
	TESTQ R8, R8
	JZ lnplain
lnaff:
	VMOVUPS (SI)(AX*1), Y0
	VSUBPS Y4, Y0, Y0
	VMULPS Y5, Y0, Y0
	VMULPS (R8)(AX*1), Y0, Y0
	VADDPS (R9)(AX*1), Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ $32, AX
	CMPQ AX, CX
	JLT lnaff
	VZEROUPPER
	RET
lnplain:
	VMOVUPS (SI)(AX*1), Y0
	VSUBPS Y4, Y0, Y0
	VMULPS Y5, Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ $32, AX
	CMPQ AX, CX
	JLT lnplain
	VZEROUPPER
	RET

// func addAVX2(dst, x, y *float32, n int)
// dst[i] = x[i] + y[i] for i < n, a positive multiple of 8.
TEXT ·addAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DX
	MOVQ n+24(FP), CX
	SHLQ $2, CX
	XORQ AX, AX
add:
	VMOVUPS (SI)(AX*1), Y0
	VADDPS (DX)(AX*1), Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ $32, AX
	CMPQ AX, CX
	JLT add
	VZEROUPPER
	RET

// func tanhAVX2(dst, x *float32, n int)
// dst[i] = tanh(x[i]) for i < n, a positive multiple of 8: sign(x)·(1 −
// e)/(1 + e) with e = e^−2|x|, or, for |x| < 0.4 (where 1 − e would lose
// digits), the Taylor series x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835 −
// 1382x¹¹/155925.
TEXT ·tanhAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
tloop:
	VMOVUPS (SI), Y0
	VANDPS ·expTab+EXP_SIGN(SB), Y0, Y6  // x's sign
	VXORPS Y6, Y0, Y7                    // a = |x|
	VADDPS Y7, Y7, Y1
	VORPS ·expTab+EXP_SIGN(SB), Y1, Y1   // −2a
	EXPNEG(Y1, Y2, Y3, Y4)               // e
	VMOVUPS ·expTab+EXP_ONE(SB), Y2
	VSUBPS Y4, Y2, Y2
	VADDPS ·expTab+EXP_ONE(SB), Y4, Y3
	VDIVPS Y3, Y2, Y2
	VORPS Y6, Y2, Y2                     // sign(x)·(1 − e)/(1 + e)
	VMULPS Y0, Y0, Y3                    // z = x²
	VMOVUPS ·expTab+EXP_T11(SB), Y4
	VFMADD213PS ·expTab+EXP_T9(SB), Y3, Y4
	VFMADD213PS ·expTab+EXP_T7(SB), Y3, Y4
	VFMADD213PS ·expTab+EXP_T5(SB), Y3, Y4
	VFMADD213PS ·expTab+EXP_T3(SB), Y3, Y4
	VMULPS Y3, Y4, Y4
	VFMADD213PS Y0, Y0, Y4               // x + x·z·P(z)
	VCMPPS $0x01, ·expTab+EXP_TANHSMALL(SB), Y7, Y5
	VBLENDVPS Y5, Y4, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ tloop
	VZEROUPPER
	RET

// func out7AVX2(d, r, k, v, gate, rk *float32, n int)
// One head of Out7 after its group norm (in d): bonus = Σ r·k·rk, then
// d = (d + bonus·v)·gate, for n a positive multiple of 8.
TEXT ·out7AVX2(SB), NOSPLIT, $0-56
	MOVQ d+0(FP), DI
	MOVQ r+8(FP), R8
	MOVQ k+16(FP), R9
	MOVQ v+24(FP), R10
	MOVQ gate+32(FP), R11
	MOVQ rk+40(FP), R12
	MOVQ n+48(FP), CX
	SHLQ $2, CX
	VXORPS Y0, Y0, Y0
	XORQ AX, AX
obonus:
	VMOVUPS (R8)(AX*1), Y1
	VMULPS (R9)(AX*1), Y1, Y1
	VFMADD231PS (R12)(AX*1), Y1, Y0
	ADDQ $32, AX
	CMPQ AX, CX
	JLT obonus
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VBROADCASTSS X0, Y0
	XORQ AX, AX
oout:
	VMULPS (R10)(AX*1), Y0, Y1
	VADDPS (DI)(AX*1), Y1, Y1
	VMULPS (R11)(AX*1), Y1, Y1
	VMOVUPS Y1, (DI)(AX*1)
	ADDQ $32, AX
	CMPQ AX, CX
	JLT oout
	VZEROUPPER
	RET

// func gateMixAVX2(d, a, b *float32, gv float32, n int)
// d[i] = gv·a[i] + (1 − gv)·b[i] for i < n, a positive multiple of 8.
TEXT ·gateMixAVX2(SB), NOSPLIT, $0-40
	MOVQ d+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	VBROADCASTSS gv+24(FP), Y2
	VMOVUPS ·expTab+EXP_ONE(SB), Y3
	VSUBPS Y2, Y3, Y3
	MOVQ n+32(FP), CX
	SHLQ $2, CX
	XORQ AX, AX
gmix:
	VMULPS (SI)(AX*1), Y2, Y0
	VMULPS (DX)(AX*1), Y3, Y1
	VADDPS Y1, Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ $32, AX
	CMPQ AX, CX
	JLT gmix
	VZEROUPPER
	RET
