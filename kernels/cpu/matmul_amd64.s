//go:build !purego

#include "textflag.h"

// Widen 8 bf16 values at m to 8 float32 in register r.
#define CVTBF16(m, r) VPMOVZXWD m, r; VPSLLD $16, r, r

// Zero the 8 accumulators of dot4.
#define ZERO8 \
	VXORPS Y0, Y0, Y0; VXORPS Y1, Y1, Y1; VXORPS Y2, Y2, Y2; VXORPS Y3, Y3, Y3; \
	VXORPS Y4, Y4, Y4; VXORPS Y5, Y5, Y5; VXORPS Y6, Y6, Y6; VXORPS Y7, Y7, Y7

// Sum Y0..Y3 (after folding Y4..Y7 into them) horizontally and store the
// four sums at (DI).
#define REDUCE4 \
	VADDPS Y4, Y0, Y0; VADDPS Y5, Y1, Y1; VADDPS Y6, Y2, Y2; VADDPS Y7, Y3, Y3; \
	VHADDPS Y1, Y0, Y0; VHADDPS Y3, Y2, Y2; VHADDPS Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; VADDPS X1, X0, X0; VMOVUPS X0, (DI)

// Load dot4's arguments. R12, R13, R14 and AX point 16 rows past the four
// rows (their spacing taken from the first two), the prefetch targets:
// rows are short (1.5 to 8 KiB), too short for the hardware prefetcher to
// ramp up on each, and prefetching the rows to come is worth 10-25% there.
#define DOT4ARGS \
	MOVQ x+0(FP), SI; MOVQ w0+8(FP), R8; MOVQ w1+16(FP), R9; MOVQ w2+24(FP), R10; \
	MOVQ w3+32(FP), R11; MOVQ n+40(FP), DX; MOVQ out+48(FP), DI; \
	MOVQ R9, AX; SUBQ R8, AX; SHLQ $4, AX; \
	LEAQ (R8)(AX*1), R12; LEAQ (R9)(AX*1), R13; LEAQ (R10)(AX*1), R14; ADDQ R11, AX; \
	XORQ CX, CX; MOVQ DX, BX; ANDQ $-16, BX

// Prefetch the 16-row-ahead counterparts of the elements at CX (es bytes
// each) of the four rows, into L2 only (PREFETCHT2): a PREFETCHT0 holds one
// of the core's few L1 fill buffers until its line arrives, which capped a
// core at ~11.5 GB/s from memory on the Sapphire Rapids VM; the L2
// requests let more lines be in flight (BenchmarkLinearGEMV: +11% here,
// +20% for the AVX-512 set, which uses the same hint).
#define DOT4PREFETCH(es) \
	PREFETCHT2 (R12)(CX*es); PREFETCHT2 (R13)(CX*es); PREFETCHT2 (R14)(CX*es); PREFETCHT2 (AX)(CX*es)

#define GEMVNNARGS \
	MOVQ d+0(FP), DI; MOVQ n+8(FP), DX; MOVQ x+16(FP), SI; MOVQ k+24(FP), R13; \
	MOVQ w+32(FP), R8; MOVQ ldw+40(FP), BX; MOVQ BX, R12; SHLQ $5, R12; XORQ R11, R11

// Broadcast x[R11..R11+3] into Y12..Y15 and point R9, R10, R14 at the rows
// after R8.
#define GEMVNNROWS \
	VBROADCASTSS (SI)(R11*4), Y12; VBROADCASTSS 4(SI)(R11*4), Y13; \
	VBROADCASTSS 8(SI)(R11*4), Y14; VBROADCASTSS 12(SI)(R11*4), Y15; \
	LEAQ (R8)(BX*1), R9; LEAQ (R8)(BX*2), R10; LEAQ (R10)(BX*1), R14; LEAQ (R8)(R12*1), AX

// GEMVNNPREFETCH asks the L2 for the four rows 32 rows ahead (AX, set by
// GEMVNNROWS), as DOT4PREFETCH does for the NT products: 64 bytes an
// iteration of 8 half-precision columns cover the group's 4·2n bytes when
// the rows are contiguous (ldw = 2n).
#define GEMVNNPREFETCH PREFETCHT2 (AX)(CX*8)

// Y0 += Y1·Y12 + Y2·Y13 + Y3·Y14 + Y4·Y15 and store it back at (DI)(CX*4).
#define GEMVNNFMA \
	VFMADD231PS Y12, Y1, Y0; VMULPS Y13, Y2, Y2; VFMADD231PS Y14, Y3, Y0; \
	VFMADD231PS Y15, Y4, Y2; VADDPS Y2, Y0, Y0; VMOVUPS Y0, (DI)(CX*4)

#define TRANSPOSEARGS \
	MOVQ dst+0(FP), DI; MOVQ ldd+8(FP), DX; SHLQ $2, DX; LEAQ (DX)(DX*2), R13; \
	MOVQ w0+16(FP), AX; MOVQ w1+24(FP), BX; MOVQ w2+32(FP), SI; MOVQ w3+40(FP), R8; \
	MOVQ w4+48(FP), R9; MOVQ w5+56(FP), R10; MOVQ w6+64(FP), R11; MOVQ w7+72(FP), R12; \
	MOVQ BX, R15; SUBQ AX, R15; SHLQ $3, R15; \
	XORQ CX, CX; CMPQ CX, n+80(FP)

// Prefetch the elements at CX (es bytes each) of the eight rows after the
// eight being transposed (R15 = 8·row spacing), so that a tile's rows
// stream from memory instead of waiting on each miss.
#define TRANSPOSEPREFETCH(es) \
	LEAQ (AX)(CX*es), R14; PREFETCHT0 (R14)(R15*1); LEAQ (BX)(CX*es), R14; PREFETCHT0 (R14)(R15*1); \
	LEAQ (SI)(CX*es), R14; PREFETCHT0 (R14)(R15*1); LEAQ (R8)(CX*es), R14; PREFETCHT0 (R14)(R15*1); \
	LEAQ (R9)(CX*es), R14; PREFETCHT0 (R14)(R15*1); LEAQ (R10)(CX*es), R14; PREFETCHT0 (R14)(R15*1); \
	LEAQ (R11)(CX*es), R14; PREFETCHT0 (R14)(R15*1); LEAQ (R12)(CX*es), R14; PREFETCHT0 (R14)(R15*1)

// Transpose the 8×8 block in Y0..Y7 (row i in Yi) and store its rows at
// DI + k·DX (DX = ldd in bytes, R13 = 3·DX), then advance DI by 8 rows.
#define TRANSPOSESTORE \
	VUNPCKLPS Y1, Y0, Y8; VUNPCKHPS Y1, Y0, Y9; VUNPCKLPS Y3, Y2, Y10; VUNPCKHPS Y3, Y2, Y11; \
	VUNPCKLPS Y5, Y4, Y12; VUNPCKHPS Y5, Y4, Y13; VUNPCKLPS Y7, Y6, Y14; VUNPCKHPS Y7, Y6, Y15; \
	VSHUFPS $0x44, Y10, Y8, Y0; VSHUFPS $0xEE, Y10, Y8, Y1; VSHUFPS $0x44, Y11, Y9, Y2; VSHUFPS $0xEE, Y11, Y9, Y3; \
	VSHUFPS $0x44, Y14, Y12, Y4; VSHUFPS $0xEE, Y14, Y12, Y5; VSHUFPS $0x44, Y15, Y13, Y6; VSHUFPS $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8; VPERM2F128 $0x20, Y5, Y1, Y9; VPERM2F128 $0x20, Y6, Y2, Y10; VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; VPERM2F128 $0x31, Y5, Y1, Y13; VPERM2F128 $0x31, Y6, Y2, Y14; VPERM2F128 $0x31, Y7, Y3, Y15; \
	LEAQ (DI)(DX*4), R14; \
	VMOVUPS Y8, (DI); VMOVUPS Y9, (DI)(DX*1); VMOVUPS Y10, (DI)(DX*2); VMOVUPS Y11, (DI)(R13*1); \
	VMOVUPS Y12, (R14); VMOVUPS Y13, (R14)(DX*1); VMOVUPS Y14, (DI)(R13*2); VMOVUPS Y15, (R14)(R13*1); \
	LEAQ (DI)(DX*8), DI

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// func xgetbv() (a, d uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, a+0(FP)
	MOVL DX, d+4(FP)
	RET

// func dot4BF16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)
// out[i] = Σ_{k<n} x[k]·wi[k], bf16 rows, n a multiple of 8.
TEXT ·dot4BF16(SB), NOSPLIT, $0-56
	DOT4ARGS
	ZERO8
	TESTQ BX, BX
	JZ    bf16tail

bf16loop:
	VMOVUPS (SI)(CX*4), Y8
	VMOVUPS 32(SI)(CX*4), Y9
	DOT4PREFETCH(2)
	CVTBF16((R8)(CX*2), Y10)
	CVTBF16(16(R8)(CX*2), Y11)
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y11, Y4
	CVTBF16((R9)(CX*2), Y12)
	CVTBF16(16(R9)(CX*2), Y13)
	VFMADD231PS Y8, Y12, Y1
	VFMADD231PS Y9, Y13, Y5
	CVTBF16((R10)(CX*2), Y10)
	CVTBF16(16(R10)(CX*2), Y11)
	VFMADD231PS Y8, Y10, Y2
	VFMADD231PS Y9, Y11, Y6
	CVTBF16((R11)(CX*2), Y12)
	CVTBF16(16(R11)(CX*2), Y13)
	VFMADD231PS Y8, Y12, Y3
	VFMADD231PS Y9, Y13, Y7
	ADDQ $16, CX
	CMPQ CX, BX
	JLT  bf16loop

bf16tail:
	CMPQ CX, DX
	JGE  bf16done
	VMOVUPS (SI)(CX*4), Y8
	CVTBF16((R8)(CX*2), Y10)
	VFMADD231PS Y8, Y10, Y0
	CVTBF16((R9)(CX*2), Y11)
	VFMADD231PS Y8, Y11, Y1
	CVTBF16((R10)(CX*2), Y12)
	VFMADD231PS Y8, Y12, Y2
	CVTBF16((R11)(CX*2), Y13)
	VFMADD231PS Y8, Y13, Y3

bf16done:
	REDUCE4
	VZEROUPPER
	RET

// func dot4F16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)
// As dot4BF16 for IEEE half rows; needs F16C.
TEXT ·dot4F16(SB), NOSPLIT, $0-56
	DOT4ARGS
	ZERO8
	TESTQ BX, BX
	JZ    f16tail

f16loop:
	VMOVUPS   (SI)(CX*4), Y8
	VMOVUPS   32(SI)(CX*4), Y9
	DOT4PREFETCH(2)
	VCVTPH2PS (R8)(CX*2), Y10
	VCVTPH2PS 16(R8)(CX*2), Y11
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y11, Y4
	VCVTPH2PS (R9)(CX*2), Y12
	VCVTPH2PS 16(R9)(CX*2), Y13
	VFMADD231PS Y8, Y12, Y1
	VFMADD231PS Y9, Y13, Y5
	VCVTPH2PS (R10)(CX*2), Y10
	VCVTPH2PS 16(R10)(CX*2), Y11
	VFMADD231PS Y8, Y10, Y2
	VFMADD231PS Y9, Y11, Y6
	VCVTPH2PS (R11)(CX*2), Y12
	VCVTPH2PS 16(R11)(CX*2), Y13
	VFMADD231PS Y8, Y12, Y3
	VFMADD231PS Y9, Y13, Y7
	ADDQ $16, CX
	CMPQ CX, BX
	JLT  f16loop

f16tail:
	CMPQ CX, DX
	JGE  f16done
	VMOVUPS   (SI)(CX*4), Y8
	VCVTPH2PS (R8)(CX*2), Y10
	VFMADD231PS Y8, Y10, Y0
	VCVTPH2PS (R9)(CX*2), Y11
	VFMADD231PS Y8, Y11, Y1
	VCVTPH2PS (R10)(CX*2), Y12
	VFMADD231PS Y8, Y12, Y2
	VCVTPH2PS (R11)(CX*2), Y13
	VFMADD231PS Y8, Y13, Y3

f16done:
	REDUCE4
	VZEROUPPER
	RET

// func dot4F32(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)
// As dot4BF16 for float32 rows.
TEXT ·dot4F32(SB), NOSPLIT, $0-56
	DOT4ARGS
	ZERO8
	TESTQ BX, BX
	JZ    f32tail

f32loop:
	VMOVUPS (SI)(CX*4), Y8
	VMOVUPS 32(SI)(CX*4), Y9
	DOT4PREFETCH(4)
	VFMADD231PS (R8)(CX*4), Y8, Y0
	VFMADD231PS 32(R8)(CX*4), Y9, Y4
	VFMADD231PS (R9)(CX*4), Y8, Y1
	VFMADD231PS 32(R9)(CX*4), Y9, Y5
	VFMADD231PS (R10)(CX*4), Y8, Y2
	VFMADD231PS 32(R10)(CX*4), Y9, Y6
	VFMADD231PS (R11)(CX*4), Y8, Y3
	VFMADD231PS 32(R11)(CX*4), Y9, Y7
	ADDQ $16, CX
	CMPQ CX, BX
	JLT  f32loop

f32tail:
	CMPQ CX, DX
	JGE  f32done
	VMOVUPS (SI)(CX*4), Y8
	VFMADD231PS (R8)(CX*4), Y8, Y0
	VFMADD231PS (R9)(CX*4), Y8, Y1
	VFMADD231PS (R10)(CX*4), Y8, Y2
	VFMADD231PS (R11)(CX*4), Y8, Y3

f32done:
	REDUCE4
	VZEROUPPER
	RET

// func gemvNNBF16(d *float32, n int, x *float32, k int, w *byte, ldw int)
// d[j] += Σ_{r<k} x[r]·w[r·ldw+j] for j < n: bf16 rows ldw bytes apart,
// k a multiple of 4, n a multiple of 8.
TEXT ·gemvNNBF16(SB), NOSPLIT, $0-48
	GEMVNNARGS

nnbf16rows:
	CMPQ R11, R13
	JGE  nnbf16done
	GEMVNNROWS
	XORQ CX, CX

nnbf16cols:
	GEMVNNPREFETCH
	VMOVUPS (DI)(CX*4), Y0
	CVTBF16((R8)(CX*2), Y1)
	CVTBF16((R9)(CX*2), Y2)
	CVTBF16((R10)(CX*2), Y3)
	CVTBF16((R14)(CX*2), Y4)
	GEMVNNFMA
	ADDQ $8, CX
	CMPQ CX, DX
	JLT  nnbf16cols
	LEAQ (R8)(BX*4), R8
	ADDQ $4, R11
	JMP  nnbf16rows

nnbf16done:
	VZEROUPPER
	RET

// func gemvNNF16(d *float32, n int, x *float32, k int, w *byte, ldw int)
// As gemvNNBF16 for IEEE half rows; needs F16C.
TEXT ·gemvNNF16(SB), NOSPLIT, $0-48
	GEMVNNARGS

nnf16rows:
	CMPQ R11, R13
	JGE  nnf16done
	GEMVNNROWS
	XORQ CX, CX

nnf16cols:
	GEMVNNPREFETCH
	VMOVUPS (DI)(CX*4), Y0
	VCVTPH2PS (R8)(CX*2), Y1
	VCVTPH2PS (R9)(CX*2), Y2
	VCVTPH2PS (R10)(CX*2), Y3
	VCVTPH2PS (R14)(CX*2), Y4
	GEMVNNFMA
	ADDQ $8, CX
	CMPQ CX, DX
	JLT  nnf16cols
	LEAQ (R8)(BX*4), R8
	ADDQ $4, R11
	JMP  nnf16rows

nnf16done:
	VZEROUPPER
	RET

// func gemvNNF32(d *float32, n int, x *float32, k int, w *byte, ldw int)
// As gemvNNBF16 for float32 rows.
TEXT ·gemvNNF32(SB), NOSPLIT, $0-48
	GEMVNNARGS

nnf32rows:
	CMPQ R11, R13
	JGE  nnf32done
	GEMVNNROWS
	XORQ CX, CX

nnf32cols:
	VMOVUPS (DI)(CX*4), Y0
	VMOVUPS (R8)(CX*4), Y1
	VMOVUPS (R9)(CX*4), Y2
	VMOVUPS (R10)(CX*4), Y3
	VMOVUPS (R14)(CX*4), Y4
	GEMVNNFMA
	ADDQ $8, CX
	CMPQ CX, DX
	JLT  nnf32cols
	LEAQ (R8)(BX*4), R8
	ADDQ $4, R11
	JMP  nnf32rows

nnf32done:
	VZEROUPPER
	RET

// func decodeBF16(dst *float32, src *byte, n int)
// Converts n bf16 values to float32; n a multiple of 8.
TEXT ·decodeBF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), DX
	XORQ CX, CX
	TESTQ DX, DX
	JZ   decbf16done

decbf16loop:
	CVTBF16((SI)(CX*2), Y0)
	VMOVUPS Y0, (DI)(CX*4)
	ADDQ $8, CX
	CMPQ CX, DX
	JLT  decbf16loop

decbf16done:
	VZEROUPPER
	RET

// func decodeF16(dst *float32, src *byte, n int)
// Converts n IEEE half values to float32; n a multiple of 8; needs F16C.
TEXT ·decodeF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), DX
	XORQ CX, CX
	TESTQ DX, DX
	JZ   decf16done

decf16loop:
	VCVTPH2PS (SI)(CX*2), Y0
	VMOVUPS Y0, (DI)(CX*4)
	ADDQ $8, CX
	CMPQ CX, DX
	JLT  decf16loop

decf16done:
	VZEROUPPER
	RET

// func transpose8BF16(dst *float32, ldd int, w0, w1, w2, w3, w4, w5, w6, w7 *byte, n int)
// dst[k*ldd+i] = wi[k] for i < 8, k < n: converts eight bf16 rows and
// transposes them; ldd in elements, n a multiple of 8.
TEXT ·transpose8BF16(SB), NOSPLIT, $0-88
	TRANSPOSEARGS
	JZ trbf16done

trbf16loop:
	TRANSPOSEPREFETCH(2)
	CVTBF16((AX)(CX*2), Y0)
	CVTBF16((BX)(CX*2), Y1)
	CVTBF16((SI)(CX*2), Y2)
	CVTBF16((R8)(CX*2), Y3)
	CVTBF16((R9)(CX*2), Y4)
	CVTBF16((R10)(CX*2), Y5)
	CVTBF16((R11)(CX*2), Y6)
	CVTBF16((R12)(CX*2), Y7)
	TRANSPOSESTORE
	ADDQ $8, CX
	CMPQ CX, n+80(FP)
	JLT  trbf16loop

trbf16done:
	VZEROUPPER
	RET

// func transpose8F16(dst *float32, ldd int, w0, w1, w2, w3, w4, w5, w6, w7 *byte, n int)
// As transpose8BF16 for IEEE half rows; needs F16C.
TEXT ·transpose8F16(SB), NOSPLIT, $0-88
	TRANSPOSEARGS
	JZ trf16done

trf16loop:
	TRANSPOSEPREFETCH(2)
	VCVTPH2PS (AX)(CX*2), Y0
	VCVTPH2PS (BX)(CX*2), Y1
	VCVTPH2PS (SI)(CX*2), Y2
	VCVTPH2PS (R8)(CX*2), Y3
	VCVTPH2PS (R9)(CX*2), Y4
	VCVTPH2PS (R10)(CX*2), Y5
	VCVTPH2PS (R11)(CX*2), Y6
	VCVTPH2PS (R12)(CX*2), Y7
	TRANSPOSESTORE
	ADDQ $8, CX
	CMPQ CX, n+80(FP)
	JLT  trf16loop

trf16done:
	VZEROUPPER
	RET

// func transpose8F32(dst *float32, ldd int, w0, w1, w2, w3, w4, w5, w6, w7 *byte, n int)
// As transpose8BF16 for float32 rows.
TEXT ·transpose8F32(SB), NOSPLIT, $0-88
	TRANSPOSEARGS
	JZ trf32done

trf32loop:
	TRANSPOSEPREFETCH(4)
	VMOVUPS (AX)(CX*4), Y0
	VMOVUPS (BX)(CX*4), Y1
	VMOVUPS (SI)(CX*4), Y2
	VMOVUPS (R8)(CX*4), Y3
	VMOVUPS (R9)(CX*4), Y4
	VMOVUPS (R10)(CX*4), Y5
	VMOVUPS (R11)(CX*4), Y6
	VMOVUPS (R12)(CX*4), Y7
	TRANSPOSESTORE
	ADDQ $8, CX
	CMPQ CX, n+80(FP)
	JLT  trf32loop

trf32done:
	VZEROUPPER
	RET

// func tileNN6x16(d *float32, ldd int, x0, x1, x2, x3, x4, x5 *float32, w *float32, ldw int, n int, acc bool)
// d[i*ldd+j] (+)= Σ_{k<n} xi[k]·w[k*ldw+j] for i < 6, j < 16; ldd, ldw
// in elements.
TEXT ·tileNN6x16(SB), NOSPLIT, $0-89
	MOVQ x0+16(FP), R8
	MOVQ x1+24(FP), R9
	MOVQ x2+32(FP), R10
	MOVQ x3+40(FP), R11
	MOVQ x4+48(FP), R12
	MOVQ x5+56(FP), R13
	MOVQ w+64(FP), SI
	MOVQ ldw+72(FP), BX
	SHLQ $2, BX
	MOVQ n+80(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	XORQ CX, CX
	TESTQ DX, DX
	JZ   nnstore

nnloop:
	VMOVUPS (SI), Y12
	VMOVUPS 32(SI), Y13
	VBROADCASTSS (R8)(CX*4), Y14
	VFMADD231PS Y12, Y14, Y0
	VFMADD231PS Y13, Y14, Y1
	VBROADCASTSS (R9)(CX*4), Y15
	VFMADD231PS Y12, Y15, Y2
	VFMADD231PS Y13, Y15, Y3
	VBROADCASTSS (R10)(CX*4), Y14
	VFMADD231PS Y12, Y14, Y4
	VFMADD231PS Y13, Y14, Y5
	VBROADCASTSS (R11)(CX*4), Y15
	VFMADD231PS Y12, Y15, Y6
	VFMADD231PS Y13, Y15, Y7
	VBROADCASTSS (R12)(CX*4), Y14
	VFMADD231PS Y12, Y14, Y8
	VFMADD231PS Y13, Y14, Y9
	VBROADCASTSS (R13)(CX*4), Y15
	VFMADD231PS Y12, Y15, Y10
	VFMADD231PS Y13, Y15, Y11
	ADDQ BX, SI
	INCQ CX
	CMPQ CX, DX
	JLT  nnloop

nnstore:
	MOVQ d+0(FP), DI
	MOVQ ldd+8(FP), AX
	SHLQ $2, AX
	MOVBLZX acc+88(FP), CX
	TESTQ CX, CX
	JZ   nnput
	VADDPS (DI), Y0, Y0
	VADDPS 32(DI), Y1, Y1
	VADDPS (DI)(AX*1), Y2, Y2
	VADDPS 32(DI)(AX*1), Y3, Y3
	VADDPS (DI)(AX*2), Y4, Y4
	VADDPS 32(DI)(AX*2), Y5, Y5
	LEAQ (DI)(AX*2), R8
	VADDPS (R8)(AX*1), Y6, Y6
	VADDPS 32(R8)(AX*1), Y7, Y7
	VADDPS (R8)(AX*2), Y8, Y8
	VADDPS 32(R8)(AX*2), Y9, Y9
	LEAQ (R8)(AX*2), R8
	VADDPS (R8)(AX*1), Y10, Y10
	VADDPS 32(R8)(AX*1), Y11, Y11

nnput:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, (DI)(AX*1)
	VMOVUPS Y3, 32(DI)(AX*1)
	VMOVUPS Y4, (DI)(AX*2)
	VMOVUPS Y5, 32(DI)(AX*2)
	LEAQ (DI)(AX*2), R8
	VMOVUPS Y6, (R8)(AX*1)
	VMOVUPS Y7, 32(R8)(AX*1)
	VMOVUPS Y8, (R8)(AX*2)
	VMOVUPS Y9, 32(R8)(AX*2)
	LEAQ (R8)(AX*2), R8
	VMOVUPS Y10, (R8)(AX*1)
	VMOVUPS Y11, 32(R8)(AX*1)
	VZEROUPPER
	RET

// Widen 8 int8 values at m to 8 float32 in register r.
#define CVTI8(m, r) VPMOVSXBD m, r; VCVTDQ2PS r, r

// func dot4I8(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)
// As dot4BF16 for int8 rows (unscaled); n a multiple of 8.
TEXT ·dot4I8(SB), NOSPLIT, $0-56
	DOT4ARGS
	ZERO8
	TESTQ BX, BX
	JZ    i8tail

i8loop:
	VMOVUPS (SI)(CX*4), Y8
	VMOVUPS 32(SI)(CX*4), Y9
	DOT4PREFETCH(1)
	CVTI8((R8)(CX*1), Y10)
	CVTI8(8(R8)(CX*1), Y11)
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y11, Y4
	CVTI8((R9)(CX*1), Y12)
	CVTI8(8(R9)(CX*1), Y13)
	VFMADD231PS Y8, Y12, Y1
	VFMADD231PS Y9, Y13, Y5
	CVTI8((R10)(CX*1), Y10)
	CVTI8(8(R10)(CX*1), Y11)
	VFMADD231PS Y8, Y10, Y2
	VFMADD231PS Y9, Y11, Y6
	CVTI8((R11)(CX*1), Y12)
	CVTI8(8(R11)(CX*1), Y13)
	VFMADD231PS Y8, Y12, Y3
	VFMADD231PS Y9, Y13, Y7
	ADDQ $16, CX
	CMPQ CX, BX
	JLT  i8loop

i8tail:
	CMPQ CX, DX
	JGE  i8done
	VMOVUPS (SI)(CX*4), Y8
	CVTI8((R8)(CX*1), Y10)
	VFMADD231PS Y8, Y10, Y0
	CVTI8((R9)(CX*1), Y11)
	VFMADD231PS Y8, Y11, Y1
	CVTI8((R10)(CX*1), Y12)
	VFMADD231PS Y8, Y12, Y2
	CVTI8((R11)(CX*1), Y13)
	VFMADD231PS Y8, Y13, Y3

i8done:
	REDUCE4
	VZEROUPPER
	RET

// func transpose8I8(dst *float32, ldd int, w0, w1, w2, w3, w4, w5, w6, w7 *byte, n int)
// As transpose8BF16 for int8 rows (unscaled).
TEXT ·transpose8I8(SB), NOSPLIT, $0-88
	TRANSPOSEARGS
	JZ tri8done

tri8loop:
	TRANSPOSEPREFETCH(1)
	CVTI8((AX)(CX*1), Y0)
	CVTI8((BX)(CX*1), Y1)
	CVTI8((SI)(CX*1), Y2)
	CVTI8((R8)(CX*1), Y3)
	CVTI8((R9)(CX*1), Y4)
	CVTI8((R10)(CX*1), Y5)
	CVTI8((R11)(CX*1), Y6)
	CVTI8((R12)(CX*1), Y7)
	TRANSPOSESTORE
	ADDQ $8, CX
	CMPQ CX, n+80(FP)
	JLT  tri8loop

tri8done:
	VZEROUPPER
	RET
