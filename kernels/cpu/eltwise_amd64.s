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
