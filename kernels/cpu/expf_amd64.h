// Vectorised exponential and sigmoid for the AVX2 kernels, on eight
// float32 lanes, the same method as expf (expf.go): x = n·ln2 + r, e^r by a
// degree-6 polynomial, times 2^n through the exponent bits. The constants
// are 8-lane rows of ·expTab (expf_amd64.s), used as memory operands, so
// the macros need no constant registers.

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
