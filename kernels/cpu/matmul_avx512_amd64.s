//go:build !purego

#include "textflag.h"

// AVX-512 (F + BW) versions of the matrix kernels: 16 float32 lanes per
// register. See matmul_amd64.s for the AVX2 versions they mirror.

// Widen 16 bf16 values at m to 16 float32 in register r.
#define CVTBF16Z(m, r) VPMOVZXWD m, r; VPSLLD $16, r, r

#define ZERO8Z \
	VXORPS Z0, Z0, Z0; VXORPS Z1, Z1, Z1; VXORPS Z2, Z2, Z2; VXORPS Z3, Z3, Z3; \
	VXORPS Z4, Z4, Z4; VXORPS Z5, Z5, Z5; VXORPS Z6, Z6, Z6; VXORPS Z7, Z7, Z7

// Fold Z4..Z7 into Z0..Z3 and the upper halves into Y0..Y3, then sum
// Y0..Y3 horizontally and store the four sums at (DI).
#define REDUCE4Z \
	VADDPS Z4, Z0, Z0; VADDPS Z5, Z1, Z1; VADDPS Z6, Z2, Z2; VADDPS Z7, Z3, Z3; \
	VEXTRACTF64X4 $1, Z0, Y4; VEXTRACTF64X4 $1, Z1, Y5; VEXTRACTF64X4 $1, Z2, Y6; VEXTRACTF64X4 $1, Z3, Y7; \
	VADDPS Y4, Y0, Y0; VADDPS Y5, Y1, Y1; VADDPS Y6, Y2, Y2; VADDPS Y7, Y3, Y3; \
	VHADDPS Y1, Y0, Y0; VHADDPS Y3, Y2, Y2; VHADDPS Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; VADDPS X1, X0, X0; VMOVUPS X0, (DI)

// As DOT4ARGS in matmul_amd64.s, with BX = n rounded down to 32.
#define DOT4ARGSZ \
	MOVQ x+0(FP), SI; MOVQ w0+8(FP), R8; MOVQ w1+16(FP), R9; MOVQ w2+24(FP), R10; \
	MOVQ w3+32(FP), R11; MOVQ n+40(FP), DX; MOVQ out+48(FP), DI; \
	MOVQ R9, AX; SUBQ R8, AX; SHLQ $4, AX; \
	LEAQ (R8)(AX*1), R12; LEAQ (R9)(AX*1), R13; LEAQ (R10)(AX*1), R14; ADDQ R11, AX; \
	XORQ CX, CX; MOVQ DX, BX; ANDQ $-32, BX

// DOT4PREFETCH's L2 prefetch (see matmul_amd64.s) for the AVX-512 loops.
#define DOT4PREFETCHZ(es) \
	PREFETCHT2 (R12)(CX*es); PREFETCHT2 (R13)(CX*es); PREFETCHT2 (R14)(CX*es); PREFETCHT2 (AX)(CX*es)

#define GEMVNNARGSZ \
	MOVQ d+0(FP), DI; MOVQ n+8(FP), DX; MOVQ x+16(FP), SI; MOVQ k+24(FP), R13; \
	MOVQ w+32(FP), R8; MOVQ ldw+40(FP), BX; MOVQ BX, R12; SHLQ $5, R12; XORQ R11, R11

// GEMVNNROWSZ also points AX 32 rows ahead, for GEMVNNPREFETCHZ.
#define GEMVNNROWSZ \
	VBROADCASTSS (SI)(R11*4), Z12; VBROADCASTSS 4(SI)(R11*4), Z13; \
	VBROADCASTSS 8(SI)(R11*4), Z14; VBROADCASTSS 12(SI)(R11*4), Z15; \
	LEAQ (R8)(BX*1), R9; LEAQ (R8)(BX*2), R10; LEAQ (R10)(BX*1), R14; LEAQ (R8)(R12*1), AX

// GEMVNNPREFETCHZ asks the L2 for the four rows 32 rows ahead (as
// DOT4PREFETCHZ does for the NT products): 128 bytes an iteration of 16
// columns cover the group's 4·2n bytes when the rows are contiguous
// (ldw = 2n).
#define GEMVNNPREFETCHZ \
	PREFETCHT2 (AX)(CX*8); PREFETCHT2 64(AX)(CX*8)

#define GEMVNNFMAZ \
	VFMADD231PS Z12, Z1, Z0; VMULPS Z13, Z2, Z2; VFMADD231PS Z14, Z3, Z0; \
	VFMADD231PS Z15, Z4, Z2; VADDPS Z2, Z0, Z0; VMOVUPS Z0, (DI)(CX*4)

// func dot4BF16x16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)
// out[i] = Σ_{k<n} x[k]·wi[k], bf16 rows, n a multiple of 16.
TEXT ·dot4BF16x16(SB), NOSPLIT, $0-56
	DOT4ARGSZ
	ZERO8Z
	TESTQ BX, BX
	JZ    zbf16tail

zbf16loop:
	VMOVUPS (SI)(CX*4), Z8
	VMOVUPS 64(SI)(CX*4), Z9
	DOT4PREFETCHZ(2)
	CVTBF16Z((R8)(CX*2), Z10)
	CVTBF16Z(32(R8)(CX*2), Z11)
	VFMADD231PS Z8, Z10, Z0
	VFMADD231PS Z9, Z11, Z4
	CVTBF16Z((R9)(CX*2), Z12)
	CVTBF16Z(32(R9)(CX*2), Z13)
	VFMADD231PS Z8, Z12, Z1
	VFMADD231PS Z9, Z13, Z5
	CVTBF16Z((R10)(CX*2), Z14)
	CVTBF16Z(32(R10)(CX*2), Z15)
	VFMADD231PS Z8, Z14, Z2
	VFMADD231PS Z9, Z15, Z6
	CVTBF16Z((R11)(CX*2), Z16)
	CVTBF16Z(32(R11)(CX*2), Z17)
	VFMADD231PS Z8, Z16, Z3
	VFMADD231PS Z9, Z17, Z7
	ADDQ $32, CX
	CMPQ CX, BX
	JLT  zbf16loop

zbf16tail:
	CMPQ CX, DX
	JGE  zbf16done
	VMOVUPS (SI)(CX*4), Z8
	CVTBF16Z((R8)(CX*2), Z10)
	VFMADD231PS Z8, Z10, Z0
	CVTBF16Z((R9)(CX*2), Z11)
	VFMADD231PS Z8, Z11, Z1
	CVTBF16Z((R10)(CX*2), Z12)
	VFMADD231PS Z8, Z12, Z2
	CVTBF16Z((R11)(CX*2), Z13)
	VFMADD231PS Z8, Z13, Z3

zbf16done:
	REDUCE4Z
	VZEROUPPER
	RET

// func dot4F16x16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)
// As dot4BF16x16 for IEEE half rows.
TEXT ·dot4F16x16(SB), NOSPLIT, $0-56
	DOT4ARGSZ
	ZERO8Z
	TESTQ BX, BX
	JZ    zf16tail

zf16loop:
	VMOVUPS   (SI)(CX*4), Z8
	VMOVUPS   64(SI)(CX*4), Z9
	DOT4PREFETCHZ(2)
	VCVTPH2PS (R8)(CX*2), Z10
	VCVTPH2PS 32(R8)(CX*2), Z11
	VFMADD231PS Z8, Z10, Z0
	VFMADD231PS Z9, Z11, Z4
	VCVTPH2PS (R9)(CX*2), Z12
	VCVTPH2PS 32(R9)(CX*2), Z13
	VFMADD231PS Z8, Z12, Z1
	VFMADD231PS Z9, Z13, Z5
	VCVTPH2PS (R10)(CX*2), Z14
	VCVTPH2PS 32(R10)(CX*2), Z15
	VFMADD231PS Z8, Z14, Z2
	VFMADD231PS Z9, Z15, Z6
	VCVTPH2PS (R11)(CX*2), Z16
	VCVTPH2PS 32(R11)(CX*2), Z17
	VFMADD231PS Z8, Z16, Z3
	VFMADD231PS Z9, Z17, Z7
	ADDQ $32, CX
	CMPQ CX, BX
	JLT  zf16loop

zf16tail:
	CMPQ CX, DX
	JGE  zf16done
	VMOVUPS   (SI)(CX*4), Z8
	VCVTPH2PS (R8)(CX*2), Z10
	VFMADD231PS Z8, Z10, Z0
	VCVTPH2PS (R9)(CX*2), Z11
	VFMADD231PS Z8, Z11, Z1
	VCVTPH2PS (R10)(CX*2), Z12
	VFMADD231PS Z8, Z12, Z2
	VCVTPH2PS (R11)(CX*2), Z13
	VFMADD231PS Z8, Z13, Z3

zf16done:
	REDUCE4Z
	VZEROUPPER
	RET

// func dot4F32x16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)
// As dot4BF16x16 for float32 rows.
TEXT ·dot4F32x16(SB), NOSPLIT, $0-56
	DOT4ARGSZ
	ZERO8Z
	TESTQ BX, BX
	JZ    zf32tail

zf32loop:
	VMOVUPS (SI)(CX*4), Z8
	VMOVUPS 64(SI)(CX*4), Z9
	DOT4PREFETCHZ(4)
	PREFETCHT0 64(R12)(CX*4); PREFETCHT0 64(R13)(CX*4); PREFETCHT0 64(R14)(CX*4); PREFETCHT0 64(AX)(CX*4)
	VFMADD231PS (R8)(CX*4), Z8, Z0
	VFMADD231PS 64(R8)(CX*4), Z9, Z4
	VFMADD231PS (R9)(CX*4), Z8, Z1
	VFMADD231PS 64(R9)(CX*4), Z9, Z5
	VFMADD231PS (R10)(CX*4), Z8, Z2
	VFMADD231PS 64(R10)(CX*4), Z9, Z6
	VFMADD231PS (R11)(CX*4), Z8, Z3
	VFMADD231PS 64(R11)(CX*4), Z9, Z7
	ADDQ $32, CX
	CMPQ CX, BX
	JLT  zf32loop

zf32tail:
	CMPQ CX, DX
	JGE  zf32done
	VMOVUPS (SI)(CX*4), Z8
	VFMADD231PS (R8)(CX*4), Z8, Z0
	VFMADD231PS (R9)(CX*4), Z8, Z1
	VFMADD231PS (R10)(CX*4), Z8, Z2
	VFMADD231PS (R11)(CX*4), Z8, Z3

zf32done:
	REDUCE4Z
	VZEROUPPER
	RET

// func gemvNNBF16x16(d *float32, n int, x *float32, k int, w *byte, ldw int)
// d[j] += Σ_{r<k} x[r]·w[r·ldw+j] for j < n: bf16 rows ldw bytes apart,
// k a multiple of 4, n a multiple of 16.
TEXT ·gemvNNBF16x16(SB), NOSPLIT, $0-48
	GEMVNNARGSZ

znnbf16rows:
	CMPQ R11, R13
	JGE  znnbf16done
	GEMVNNROWSZ
	XORQ CX, CX

znnbf16cols:
	GEMVNNPREFETCHZ
	VMOVUPS (DI)(CX*4), Z0
	CVTBF16Z((R8)(CX*2), Z1)
	CVTBF16Z((R9)(CX*2), Z2)
	CVTBF16Z((R10)(CX*2), Z3)
	CVTBF16Z((R14)(CX*2), Z4)
	GEMVNNFMAZ
	ADDQ $16, CX
	CMPQ CX, DX
	JLT  znnbf16cols
	LEAQ (R8)(BX*4), R8
	ADDQ $4, R11
	JMP  znnbf16rows

znnbf16done:
	VZEROUPPER
	RET

// func gemvNNF16x16(d *float32, n int, x *float32, k int, w *byte, ldw int)
// As gemvNNBF16x16 for IEEE half rows.
TEXT ·gemvNNF16x16(SB), NOSPLIT, $0-48
	GEMVNNARGSZ

znnf16rows:
	CMPQ R11, R13
	JGE  znnf16done
	GEMVNNROWSZ
	XORQ CX, CX

znnf16cols:
	GEMVNNPREFETCHZ
	VMOVUPS (DI)(CX*4), Z0
	VCVTPH2PS (R8)(CX*2), Z1
	VCVTPH2PS (R9)(CX*2), Z2
	VCVTPH2PS (R10)(CX*2), Z3
	VCVTPH2PS (R14)(CX*2), Z4
	GEMVNNFMAZ
	ADDQ $16, CX
	CMPQ CX, DX
	JLT  znnf16cols
	LEAQ (R8)(BX*4), R8
	ADDQ $4, R11
	JMP  znnf16rows

znnf16done:
	VZEROUPPER
	RET

// func tileNN6x32(d *float32, ldd int, x0, x1, x2, x3, x4, x5 *float32, w *float32, ldw int, n int, acc bool)
// d[i*ldd+j] (+)= Σ_{k<n} xi[k]·w[k*ldw+j] for i < 6, j < 32; ldd, ldw
// in elements. Twelve accumulators, two weight vectors and one broadcast a
// row per k: twelve FMAs for eight loads.
TEXT ·tileNN6x32(SB), NOSPLIT, $0-89
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
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	XORQ CX, CX
	TESTQ DX, DX
	JZ   znnstore

	MOVQ DX, DI
	ANDQ $-2, DI
	TESTQ DI, DI
	JZ   znnodd

znnloop2:
	VMOVUPS (SI), Z12
	VMOVUPS 64(SI), Z13
	VMOVUPS (SI)(BX*1), Z20
	VMOVUPS 64(SI)(BX*1), Z21
	VBROADCASTSS (R8)(CX*4), Z14
	VFMADD231PS Z12, Z14, Z0
	VFMADD231PS Z13, Z14, Z1
	VBROADCASTSS (R9)(CX*4), Z15
	VFMADD231PS Z12, Z15, Z2
	VFMADD231PS Z13, Z15, Z3
	VBROADCASTSS (R10)(CX*4), Z16
	VFMADD231PS Z12, Z16, Z4
	VFMADD231PS Z13, Z16, Z5
	VBROADCASTSS (R11)(CX*4), Z17
	VFMADD231PS Z12, Z17, Z6
	VFMADD231PS Z13, Z17, Z7
	VBROADCASTSS (R12)(CX*4), Z18
	VFMADD231PS Z12, Z18, Z8
	VFMADD231PS Z13, Z18, Z9
	VBROADCASTSS (R13)(CX*4), Z19
	VFMADD231PS Z12, Z19, Z10
	VFMADD231PS Z13, Z19, Z11
	VBROADCASTSS 4(R8)(CX*4), Z22
	VFMADD231PS Z20, Z22, Z0
	VFMADD231PS Z21, Z22, Z1
	VBROADCASTSS 4(R9)(CX*4), Z23
	VFMADD231PS Z20, Z23, Z2
	VFMADD231PS Z21, Z23, Z3
	VBROADCASTSS 4(R10)(CX*4), Z24
	VFMADD231PS Z20, Z24, Z4
	VFMADD231PS Z21, Z24, Z5
	VBROADCASTSS 4(R11)(CX*4), Z25
	VFMADD231PS Z20, Z25, Z6
	VFMADD231PS Z21, Z25, Z7
	VBROADCASTSS 4(R12)(CX*4), Z26
	VFMADD231PS Z20, Z26, Z8
	VFMADD231PS Z21, Z26, Z9
	VBROADCASTSS 4(R13)(CX*4), Z27
	VFMADD231PS Z20, Z27, Z10
	VFMADD231PS Z21, Z27, Z11
	LEAQ (SI)(BX*2), SI
	ADDQ $2, CX
	CMPQ CX, DI
	JLT  znnloop2

znnodd:
	CMPQ CX, DX
	JGE  znnstore

znnloop:
	VMOVUPS (SI), Z12
	VMOVUPS 64(SI), Z13
	VBROADCASTSS (R8)(CX*4), Z14
	VFMADD231PS Z12, Z14, Z0
	VFMADD231PS Z13, Z14, Z1
	VBROADCASTSS (R9)(CX*4), Z15
	VFMADD231PS Z12, Z15, Z2
	VFMADD231PS Z13, Z15, Z3
	VBROADCASTSS (R10)(CX*4), Z16
	VFMADD231PS Z12, Z16, Z4
	VFMADD231PS Z13, Z16, Z5
	VBROADCASTSS (R11)(CX*4), Z17
	VFMADD231PS Z12, Z17, Z6
	VFMADD231PS Z13, Z17, Z7
	VBROADCASTSS (R12)(CX*4), Z18
	VFMADD231PS Z12, Z18, Z8
	VFMADD231PS Z13, Z18, Z9
	VBROADCASTSS (R13)(CX*4), Z19
	VFMADD231PS Z12, Z19, Z10
	VFMADD231PS Z13, Z19, Z11
	ADDQ BX, SI
	INCQ CX
	CMPQ CX, DX
	JLT  znnloop

znnstore:
	MOVQ d+0(FP), DI
	MOVQ ldd+8(FP), AX
	SHLQ $2, AX
	MOVBLZX acc+88(FP), CX
	TESTQ CX, CX
	JZ   znnput
	VADDPS (DI), Z0, Z0
	VADDPS 64(DI), Z1, Z1
	VADDPS (DI)(AX*1), Z2, Z2
	VADDPS 64(DI)(AX*1), Z3, Z3
	VADDPS (DI)(AX*2), Z4, Z4
	VADDPS 64(DI)(AX*2), Z5, Z5
	LEAQ (DI)(AX*2), R8
	VADDPS (R8)(AX*1), Z6, Z6
	VADDPS 64(R8)(AX*1), Z7, Z7
	VADDPS (R8)(AX*2), Z8, Z8
	VADDPS 64(R8)(AX*2), Z9, Z9
	LEAQ (R8)(AX*2), R8
	VADDPS (R8)(AX*1), Z10, Z10
	VADDPS 64(R8)(AX*1), Z11, Z11

znnput:
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, (DI)(AX*1)
	VMOVUPS Z3, 64(DI)(AX*1)
	VMOVUPS Z4, (DI)(AX*2)
	VMOVUPS Z5, 64(DI)(AX*2)
	LEAQ (DI)(AX*2), R8
	VMOVUPS Z6, (R8)(AX*1)
	VMOVUPS Z7, 64(R8)(AX*1)
	VMOVUPS Z8, (R8)(AX*2)
	VMOVUPS Z9, 64(R8)(AX*2)
	LEAQ (R8)(AX*2), R8
	VMOVUPS Z10, (R8)(AX*1)
	VMOVUPS Z11, 64(R8)(AX*1)
	VZEROUPPER
	RET

// Widen 16 int8 values at m to 16 float32 in register r.
#define CVTI8Z(m, r) VPMOVSXBD m, r; VCVTDQ2PS r, r

// func dot4I8x16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)
// As dot4BF16x16 for int8 rows (unscaled); n a multiple of 16.
TEXT ·dot4I8x16(SB), NOSPLIT, $0-56
	DOT4ARGSZ
	ZERO8Z
	TESTQ BX, BX
	JZ    zi8tail

zi8loop:
	VMOVUPS (SI)(CX*4), Z8
	VMOVUPS 64(SI)(CX*4), Z9
	DOT4PREFETCHZ(1)
	CVTI8Z((R8)(CX*1), Z10)
	CVTI8Z(16(R8)(CX*1), Z11)
	VFMADD231PS Z8, Z10, Z0
	VFMADD231PS Z9, Z11, Z4
	CVTI8Z((R9)(CX*1), Z12)
	CVTI8Z(16(R9)(CX*1), Z13)
	VFMADD231PS Z8, Z12, Z1
	VFMADD231PS Z9, Z13, Z5
	CVTI8Z((R10)(CX*1), Z14)
	CVTI8Z(16(R10)(CX*1), Z15)
	VFMADD231PS Z8, Z14, Z2
	VFMADD231PS Z9, Z15, Z6
	CVTI8Z((R11)(CX*1), Z16)
	CVTI8Z(16(R11)(CX*1), Z17)
	VFMADD231PS Z8, Z16, Z3
	VFMADD231PS Z9, Z17, Z7
	ADDQ $32, CX
	CMPQ CX, BX
	JLT  zi8loop

zi8tail:
	CMPQ CX, DX
	JGE  zi8done
	VMOVUPS (SI)(CX*4), Z8
	CVTI8Z((R8)(CX*1), Z10)
	VFMADD231PS Z8, Z10, Z0
	CVTI8Z((R9)(CX*1), Z11)
	VFMADD231PS Z8, Z11, Z1
	CVTI8Z((R10)(CX*1), Z12)
	VFMADD231PS Z8, Z12, Z2
	CVTI8Z((R11)(CX*1), Z13)
	VFMADD231PS Z8, Z13, Z3

zi8done:
	REDUCE4Z
	VZEROUPPER
	RET

// Sum the 16 int32 lanes of each of a, b, c, d within each 128-bit lane:
// u's lane l holds [Σa, Σb, Σc, Σd] over lane l of the four. Clobbers
// t1..t3.
#define HSUM4Q(a, b, c, d, t1, t2, t3, u) \
	VPUNPCKLDQ  b, a, t1; VPUNPCKHDQ b, a, t2; VPADDD t2, t1, t1; \
	VPUNPCKLDQ  d, c, t2; VPUNPCKHDQ d, c, t3; VPADDD t3, t2, t2; \
	VPUNPCKLQDQ t2, t1, u; VPUNPCKHQDQ t2, t1, t3; VPADDD t3, u, u

// Four digit products of one row: the weights w (64 int8) against the
// unsigned digits Z16..Z19 into a0..a3.
#define DOTQROW(w, a0, a1, a2, a3) \
	VPDPBUSD w, Z16, a0; VPDPBUSD w, Z17, a1; VPDPBUSD w, Z18, a2; VPDPBUSD w, Z19, a3

// func dot4U8x64(d *byte, ld int, w0, w1, w2, w3 *byte, n int, out *[16]int32)
// For the four int8 rows wi and the unsigned digit rows dj = d + j·ld
// (j < 4): out[4i+j] = Σ_{k<n} dj[k]·wi[k]; n a multiple of 64
// (AVX512_VNNI; see matmul_i8q.go for the ranges). Per 64 bytes of each
// row: one load and four VPDPBUSD; the four digit loads serve all four
// rows. The int32 sums of every accumulator's 16 lanes go out as one
// vector.
TEXT ·dot4U8x64(SB), NOSPLIT, $0-64
	MOVQ d+0(FP), SI
	MOVQ ld+8(FP), BX
	MOVQ w0+16(FP), R8
	MOVQ w1+24(FP), R9
	MOVQ w2+32(FP), R10
	MOVQ w3+40(FP), R11
	MOVQ n+48(FP), DI
	// SI, DX, BX, R15 point at the digit rows d0..d3.
	LEAQ (SI)(BX*1), DX
	LEAQ (DX)(BX*2), R15
	ADDQ DX, BX
	// As DOT4ARGS: R12, R13, R14, AX point 16 rows ahead, for the prefetch.
	MOVQ R9, AX
	SUBQ R8, AX
	SHLQ $4, AX
	LEAQ (R8)(AX*1), R12
	LEAQ (R9)(AX*1), R13
	LEAQ (R10)(AX*1), R14
	ADDQ R11, AX
	XORQ CX, CX
	ANDQ $-64, DI
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	TESTQ  DI, DI
	JZ     qdone

qloop:
	VMOVDQU64 (SI)(CX*1), Z16
	VMOVDQU64 (DX)(CX*1), Z17
	VMOVDQU64 (BX)(CX*1), Z18
	VMOVDQU64 (R15)(CX*1), Z19
	DOT4PREFETCHZ(1)
	VMOVDQU64 (R8)(CX*1), Z20
	VMOVDQU64 (R9)(CX*1), Z21
	VMOVDQU64 (R10)(CX*1), Z22
	VMOVDQU64 (R11)(CX*1), Z23
	DOTQROW(Z20, Z0, Z1, Z2, Z3)
	DOTQROW(Z21, Z4, Z5, Z6, Z7)
	DOTQROW(Z22, Z8, Z9, Z10, Z11)
	DOTQROW(Z23, Z12, Z13, Z14, Z15)
	ADDQ $64, CX
	CMPQ CX, DI
	JLT  qloop

qdone:
	HSUM4Q(Z0, Z1, Z2, Z3, Z16, Z17, Z18, Z24)
	HSUM4Q(Z4, Z5, Z6, Z7, Z16, Z17, Z18, Z25)
	HSUM4Q(Z8, Z9, Z10, Z11, Z16, Z17, Z18, Z26)
	HSUM4Q(Z12, Z13, Z14, Z15, Z16, Z17, Z18, Z27)
	// Transpose the 128-bit lanes of Z24..Z27 (rows 0..3) and add: lane i
	// of Z20 is row i's four totals.
	VSHUFI32X4 $0x44, Z25, Z24, Z16
	VSHUFI32X4 $0xee, Z25, Z24, Z17
	VPADDD     Z17, Z16, Z16
	VSHUFI32X4 $0x44, Z27, Z26, Z18
	VSHUFI32X4 $0xee, Z27, Z26, Z17
	VPADDD     Z17, Z18, Z18
	VSHUFI32X4 $0x88, Z18, Z16, Z20
	VSHUFI32X4 $0xdd, Z18, Z16, Z21
	VPADDD     Z21, Z20, Z20
	MOVQ       out+56(FP), DI
	VMOVDQU32  Z20, (DI)
	VZEROUPPER
	RET

// HREDUCEZ0(op) folds the 16 dwords of Z0 into the low dword of X0 with
// the packed dword op (VPADDD, VPMAXUD), using Y1/X1.
#define HREDUCEZ0(op) \
	VEXTRACTI64X4 $1, Z0, Y1; op Y1, Y0, Y0; \
	VEXTRACTI128 $1, Y0, X1; op X1, X0, X0; \
	VPSHUFD $0x4e, X0, X1; op X1, X0, X0; \
	VPSHUFD $0xb1, X0, X1; op X1, X0, X0

// func maxAbsBits16(x *float32, n int) uint32
// Returns max_{k<n} (bits of x[k]) &^ (1<<31), the largest |x[k]| as bits
// (non-negative floats order as their bits; NaNs and infinities come
// out ≥ 0x7f800000); n a multiple of 16.
TEXT ·maxAbsBits16(SB), NOSPLIT, $0-20
	MOVQ       x+0(FP), SI
	MOVQ       n+8(FP), CX
	VPXORD     Z0, Z0, Z0
	VPXORD     Z1, Z1, Z1
	VPTERNLOGD $0xff, Z2, Z2, Z2
	VPSRLD     $1, Z2, Z2
	XORQ       AX, AX
	MOVQ       CX, BX
	ANDQ       $-32, BX
	JZ         mabs16

mabs32:
	VPANDD  (SI)(AX*4), Z2, Z3
	VPANDD  64(SI)(AX*4), Z2, Z4
	VPMAXUD Z3, Z0, Z0
	VPMAXUD Z4, Z1, Z1
	ADDQ    $32, AX
	CMPQ    AX, BX
	JLT     mabs32

mabs16:
	CMPQ    AX, CX
	JGE     mabsdone
	VPANDD  (SI)(AX*4), Z2, Z3
	VPMAXUD Z3, Z0, Z0

mabsdone:
	VPMAXUD Z1, Z0, Z0
	HREDUCEZ0(VPMAXUD)
	VMOVD   X0, AX
	MOVL          AX, ret+16(FP)
	VZEROUPPER
	RET

// func toDigits16(d *byte, ld int, x *float32, n int, inv float64)
// For k < n (a multiple of 16): u = round(float64(x[k])·inv) + 2^31 (the
// product rounded to nearest even, as MXCSR has it; the add is an XOR of
// the top bit), and byte j of u goes to d[j·ld + k] (j < 4). See
// matmul_i8q.go.
TEXT ·toDigits16(SB), NOSPLIT, $0-40
	MOVQ         d+0(FP), DI
	MOVQ         ld+8(FP), BX
	MOVQ         x+16(FP), SI
	MOVQ         n+24(FP), CX
	VBROADCASTSD inv+32(FP), Z4
	LEAQ         (DI)(BX*1), R8
	LEAQ         (R8)(BX*1), R9
	LEAQ         (R9)(BX*1), R10
	MOVL         $0x80000000, AX
	VPBROADCASTD AX, Z5
	XORQ         AX, AX
	TESTQ        CX, CX
	JZ           digdone

digloop:
	VCVTPS2PD    (SI)(AX*4), Z0
	VCVTPS2PD    32(SI)(AX*4), Z1
	VMULPD       Z4, Z0, Z0
	VMULPD       Z4, Z1, Z1
	VCVTPD2DQ    Z0, Y0
	VCVTPD2DQ    Z1, Y1
	VINSERTI64X4 $1, Y1, Z0, Z0
	VPXORD       Z5, Z0, Z0
	VPMOVDB      Z0, (DI)(AX*1)
	VPSRLD       $8, Z0, Z1
	VPMOVDB      Z1, (R8)(AX*1)
	VPSRLD       $16, Z0, Z1
	VPMOVDB      Z1, (R9)(AX*1)
	VPSRLD       $24, Z0, Z1
	VPMOVDB      Z1, (R10)(AX*1)
	ADDQ         $16, AX
	CMPQ         AX, CX
	JLT          digloop

digdone:
	VZEROUPPER
	RET

// func sumI8x64(w *byte, n int) int32
// Returns Σ_{k<n} w[k] (int8); n a multiple of 64, at most qMaxK.
TEXT ·sumI8x64(SB), NOSPLIT, $0-20
	MOVQ       w+0(FP), SI
	MOVQ       n+8(FP), CX
	VPXORD     Z0, Z0, Z0
	VPTERNLOGD $0xff, Z2, Z2, Z2
	VPABSB     Z2, Z2
	XORQ       AX, AX
	TESTQ      CX, CX
	JZ         sumdone

sumloop:
	VPDPBUSD (SI)(AX*1), Z2, Z0
	ADDQ     $64, AX
	CMPQ     AX, CX
	JLT      sumloop

sumdone:
	HREDUCEZ0(VPADDD)
	VMOVD X0, AX
	MOVL          AX, ret+16(FP)
	VZEROUPPER
	RET
