// Vectorised exponential and sigmoid for the AVX2 kernels, on eight
// float32 lanes, the same method as expf (expf.go): x = n·ln2 + r, e^r by a
// degree-6 polynomial, times 2^n through the exponent bits. The constants
// are 8-lane rows of ·expTab (expf_amd64.s). EXPNEG and SIGMOID use them
// as memory operands and need no constant registers; EXP8 is the same
// exponential with the constants in Y6..Y15 (LOADEXP), which runs tight
// loops 10–20% faster where ten registers can be spared.

// Offsets of ·expTab's rows.
#define EXP_LOG2E 0
#define EXP_LN2HI 32
#define EXP_LN2LO 64
#define EXP_C720 96
#define EXP_C120 128
#define EXP_C24 160
#define EXP_C6 192
#define EXP_HALF 224
#define EXP_ONE 256
#define EXP_MIN 288
#define EXP_SIGN 320
#define EXP_NEGDECAY 352
#define EXP_TANHSMALL 384
#define EXP_T3 416
#define EXP_T5 448
#define EXP_T7 480
#define EXP_T9 512
#define EXP_T11 544
#define EXP_TINY64 576
#define EXP_ONE64 584

// EXPNEG sets r = e^x for x ≤ 0 or NaN (0 below −87.3, where e^x leaves the
// normal range); t1 and t2 are scratch; x is kept. r, t1, t2 and x are
// distinct Y registers.
#define EXPNEG(x, t1, t2, r) \
	VMULPS ·expTab+EXP_LOG2E(SB), x, t1; VROUNDPS $0, t1, t1; \
	VMOVAPS x, t2; VFNMADD231PS ·expTab+EXP_LN2HI(SB), t1, t2; VFNMADD231PS ·expTab+EXP_LN2LO(SB), t1, t2; \
	VMOVUPS ·expTab+EXP_C720(SB), r; VFMADD213PS ·expTab+EXP_C120(SB), t2, r; \
	VFMADD213PS ·expTab+EXP_C24(SB), t2, r; VFMADD213PS ·expTab+EXP_C6(SB), t2, r; \
	VFMADD213PS ·expTab+EXP_HALF(SB), t2, r; VFMADD213PS ·expTab+EXP_ONE(SB), t2, r; \
	VFMADD213PS ·expTab+EXP_ONE(SB), t2, r; \
	VCVTPS2DQ t1, t1; VPSLLD $23, t1, t1; VPADDD ·expTab+EXP_ONE(SB), t1, t1; VMULPS t1, r, r; \
	VCMPPS $0x05, ·expTab+EXP_MIN(SB), x, t1; VANDPS t1, r, r

// SIGMOID sets r = 1/(1 + e^−x) through e = e^−|x| (which cannot
// overflow): 1/(1 + e) for x ≥ 0, e/(1 + e) below; t1..t3 are scratch, x
// is kept.
#define SIGMOID(x, t1, t2, t3, r) \
	VORPS ·expTab+EXP_SIGN(SB), x, t3; \
	EXPNEG(t3, t1, t2, r); \
	VADDPS ·expTab+EXP_ONE(SB), r, t1; VMOVUPS ·expTab+EXP_ONE(SB), t2; VDIVPS t1, t2, t2; \
	VMULPS t2, r, r; VBLENDVPS x, r, t2, r

// LOADEXP loads EXP8's constants: Y6 log2 e, Y7 and Y8 ln 2 (high and
// low parts), Y9..Y12 1/720, 1/120, 1/24, 1/6, Y13 1/2, Y14 1, Y15 −87.3.
#define LOADEXP \
	VMOVUPS ·expTab+EXP_LOG2E(SB), Y6; VMOVUPS ·expTab+EXP_LN2HI(SB), Y7; VMOVUPS ·expTab+EXP_LN2LO(SB), Y8; \
	VMOVUPS ·expTab+EXP_C720(SB), Y9; VMOVUPS ·expTab+EXP_C120(SB), Y10; VMOVUPS ·expTab+EXP_C24(SB), Y11; \
	VMOVUPS ·expTab+EXP_C6(SB), Y12; VMOVUPS ·expTab+EXP_HALF(SB), Y13; VMOVUPS ·expTab+EXP_ONE(SB), Y14; \
	VMOVUPS ·expTab+EXP_MIN(SB), Y15

// EXP8 sets Y3 = e^Y0 as EXPNEG does, using Y1 and Y2 and the constants
// LOADEXP put in Y6..Y15.
#define EXP8 \
	VMULPS Y6, Y0, Y1; VROUNDPS $0, Y1, Y1; \
	VMOVAPS Y0, Y2; VFNMADD231PS Y7, Y1, Y2; VFNMADD231PS Y8, Y1, Y2; \
	VMOVAPS Y9, Y3; VFMADD213PS Y10, Y2, Y3; VFMADD213PS Y11, Y2, Y3; VFMADD213PS Y12, Y2, Y3; \
	VFMADD213PS Y13, Y2, Y3; VFMADD213PS Y14, Y2, Y3; VFMADD213PS Y14, Y2, Y3; \
	VCVTPS2DQ Y1, Y1; VPSLLD $23, Y1, Y1; VPADDD Y14, Y1, Y1; VMULPS Y1, Y3, Y3; \
	VCMPPS $0x05, Y15, Y0, Y1; VANDPS Y1, Y3, Y3
