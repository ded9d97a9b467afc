//go:build !purego

#include "textflag.h"

// func expBlocksAVX2(dst, x *float32, n int, c *[8]float64, tab *[32]float64, sums *[4]float64)
//
// For each block of four: d = float64(x) − m; k = trunc(d·scale − 0.5);
// r = d − k·step; p = 1 + r·(1 + r·(1/2 + r·(1/6 + r·(1/24)))); t =
// tab[k & 31] with k >> 5 added to its exponent; e = float32(p·t), 0 where
// d < −104; dst = e; sums += float64(e), lane j for the block's element j.
// Multiplies and adds stay separate, as in the Go code, so every result is
// the same to the bit.
TEXT ·expBlocksAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ c+24(FP), AX
	MOVQ tab+32(FP), R8
	MOVQ sums+40(FP), R9
	VBROADCASTSD 0(AX), Y15  // m
	VBROADCASTSD 8(AX), Y14  // scale
	VBROADCASTSD 16(AX), Y13 // 1/2
	VBROADCASTSD 24(AX), Y12 // step
	VBROADCASTSD 32(AX), Y11 // 1
	VBROADCASTSD 40(AX), Y10 // 1/6
	VBROADCASTSD 48(AX), Y9  // 1/24
	VBROADCASTSD 56(AX), Y8  // −104
	MOVL $31, DX
	MOVQ DX, X7
	VPBROADCASTD X7, X7      // 31 in four int32 lanes
	VXORPD Y5, Y5, Y5        // the four sums

loop:
	TESTQ CX, CX
	JZ    done
	VCVTPS2PD (SI), Y0       // float64(x)
	VSUBPD Y15, Y0, Y0       // d = x − m
	VMULPD Y14, Y0, Y1       // d·scale
	VSUBPD Y13, Y1, Y1       // − 0.5
	VCVTTPD2DQY Y1, X2       // k, truncated toward zero
	VCVTDQ2PD X2, Y3         // float64(k)
	VMULPD Y12, Y3, Y3       // k·step
	VSUBPD Y3, Y0, Y4        // r = d − k·step
	VMULPD Y9, Y4, Y6        // r·(1/24)
	VADDPD Y10, Y6, Y6       // 1/6 + …
	VMULPD Y4, Y6, Y6        // r·(…)
	VADDPD Y13, Y6, Y6       // 1/2 + …
	VMULPD Y4, Y6, Y6        // r·(…)
	VADDPD Y11, Y6, Y6       // 1 + …
	VMULPD Y4, Y6, Y6        // r·(…)
	VADDPD Y11, Y6, Y6       // p = 1 + …
	VCMPPD $1, Y8, Y0, Y0    // d < −104
	VPAND X7, X2, X3         // k & 31
	VPSRAD $5, X2, X2        // k >> 5
	VPMOVSXDQ X2, Y2
	VPSLLQ $52, Y2, Y2       // … in the exponent's place
	VPCMPEQD Y1, Y1, Y1      // gather every lane
	VGATHERDPD Y1, (R8)(X3*8), Y4
	VPADDQ Y2, Y4, Y4        // t = tab[k & 31]·2^(k >> 5)
	VMULPD Y4, Y6, Y6        // p·t
	VANDNPD Y6, Y0, Y6       // 0 where d < −104
	VCVTPD2PSY Y6, X6        // e = float32(p·t)
	VMOVUPS X6, (DI)
	VCVTPS2PD X6, Y6
	VADDPD Y6, Y5, Y5        // sums += float64(e)
	ADDQ  $16, SI
	ADDQ  $16, DI
	DECQ  CX
	JMP   loop

done:
	VMOVUPD Y5, (R9)
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32
//
// The largest of x[0, 8n) (no NaN among them; −0 and +0 may come back
// either way, which no use of the maximum can tell apart).
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	ADDQ $32, SI
	DECQ CX

maxloop:
	TESTQ CX, CX
	JZ    maxdone
	VMAXPS (SI), Y0, Y0
	ADDQ  $32, SI
	DECQ  CX
	JMP   maxloop

maxdone:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func scaleAVX2(dst *float32, n int, inv float64)
//
// dst[i] = float32(float64(dst[i])·inv) for i < 4n: the same multiply and
// rounding as the Go loop.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSD inv+16(FP), Y1

scaleloop:
	TESTQ CX, CX
	JZ    scaledone
	VCVTPS2PD (DI), Y0
	VMULPD Y1, Y0, Y0
	VCVTPD2PSY Y0, X0
	VMOVUPS X0, (DI)
	ADDQ  $16, DI
	DECQ  CX
	JMP   scaleloop

scaledone:
	VZEROUPPER
	RET
