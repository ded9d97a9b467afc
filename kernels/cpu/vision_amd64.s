//go:build !purego

#include "textflag.h"

#include "expf_amd64.h"

// Constants of the GELU (float32 bits); the exponential (EXP8, LOADEXP)
// is expf_amd64.h's.
DATA visc<>+0(SB)/4, $0x40000000 // 2
DATA visc<>+4(SB)/4, $0xbf3504f3 // -1/√2
DATA visc<>+8(SB)/4, $0x7fffffff // |x| mask
// erfc(z) = t·exp(−z² + P(t)), t = 1/(1 + z/2): P's coefficients, highest first.
DATA visc<>+12(SB)/4, $0x3e2ef945
DATA visc<>+16(SB)/4, $0xbf527892
DATA visc<>+20(SB)/4, $0x3fbe87b0
DATA visc<>+24(SB)/4, $0xbf914e5d
DATA visc<>+28(SB)/4, $0x3e8ec7cc
DATA visc<>+32(SB)/4, $0xbe3ec24c
DATA visc<>+36(SB)/4, $0x3dc636c9
DATA visc<>+40(SB)/4, $0x3ebf88fb
DATA visc<>+44(SB)/4, $0x3f8000c7
DATA visc<>+48(SB)/4, $0xbfa1fc4e
GLOBL visc<>(SB), RODATA|NOPTR, $52

// func expShiftSumAVX2(row *float32, n int, m float32) float32
// row[i] = e^(row[i] − m) for i < n (n a positive multiple of 8, every
// row[i] ≤ m); returns their sum.
TEXT ·expShiftSumAVX2(SB), NOSPLIT, $0-28
	MOVQ row+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Y5
	LOADEXP
	VXORPS Y4, Y4, Y4
loop:
	VMOVUPS (SI), Y0
	VSUBPS Y5, Y0, Y0
	EXP8
	VMOVUPS Y3, (SI)
	VADDPS Y3, Y4, Y4
	ADDQ $32, SI
	SUBQ $8, CX
	JNZ loop
	VEXTRACTF128 $1, Y4, X0
	VADDPS X0, X4, X4
	VHADDPS X4, X4, X4
	VHADDPS X4, X4, X4
	MOVSS X4, ret+24(FP)
	VZEROUPPER
	RET

// func geluAVX2(dst, x *float32, n int)
// dst[i] = x[i]·Φ(x[i]) for i < n (n a positive multiple of 8), with
// Φ(x) = erfc(−x/√2)/2 and erfc as in geluErf.
TEXT ·geluAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	LOADEXP
gloop:
	VMOVUPS (SI), Y5                    // x
	VBROADCASTSS visc<>+4(SB), Y4
	VMULPS Y4, Y5, Y4                   // z = −x/√2
	VBROADCASTSS visc<>+8(SB), Y1
	VANDPS Y1, Y4, Y1                   // a = |z|
	VMOVAPS Y14, Y2
	VFMADD231PS Y13, Y1, Y2             // 1 + a/2
	VDIVPS Y2, Y14, Y2                  // t
	VBROADCASTSS visc<>+12(SB), Y0
	VBROADCASTSS visc<>+16(SB), Y3
	VFMADD213PS Y3, Y2, Y0
	VBROADCASTSS visc<>+20(SB), Y3
	VFMADD213PS Y3, Y2, Y0
	VBROADCASTSS visc<>+24(SB), Y3
	VFMADD213PS Y3, Y2, Y0
	VBROADCASTSS visc<>+28(SB), Y3
	VFMADD213PS Y3, Y2, Y0
	VBROADCASTSS visc<>+32(SB), Y3
	VFMADD213PS Y3, Y2, Y0
	VBROADCASTSS visc<>+36(SB), Y3
	VFMADD213PS Y3, Y2, Y0
	VBROADCASTSS visc<>+40(SB), Y3
	VFMADD213PS Y3, Y2, Y0
	VBROADCASTSS visc<>+44(SB), Y3
	VFMADD213PS Y3, Y2, Y0
	VBROADCASTSS visc<>+48(SB), Y3
	VFMADD213PS Y3, Y2, Y0              // P(t)
	VFNMADD231PS Y1, Y1, Y0             // −a² + P
	VMOVAPS Y2, Y4                      // t (EXP8 clobbers Y1..Y3)
	EXP8                                // Y3 = e^(−a² + P)
	VMULPS Y4, Y3, Y3                   // erfc(a) = t·e
	// z < 0 (x > 0): erfc(z) = 2 − erfc(a).
	VBROADCASTSS visc<>+0(SB), Y0
	VSUBPS Y3, Y0, Y0                   // 2 − e
	VSUBPS Y3, Y0, Y0                   // 2 − 2e
	VXORPS Y1, Y1, Y1
	VCMPPS $0x1e, Y1, Y5, Y1            // x > 0
	VANDPS Y1, Y0, Y0
	VADDPS Y0, Y3, Y3                   // erfc(z)
	VMULPS Y13, Y5, Y5                  // x/2
	VMULPS Y5, Y3, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ gloop
	VZEROUPPER
	RET

// func maxAVX2(row *float32, n int) float32
// Returns the largest of row[0..n) (n a positive multiple of 8; NaNs are
// not looked for).
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ row+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JZ mdone
mloop:
	VMAXPS (SI), Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JNZ mloop
mdone:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	MOVSS X0, ret+16(FP)
	VZEROUPPER
	RET
