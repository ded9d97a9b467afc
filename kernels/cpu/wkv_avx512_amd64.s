//go:build !purego

#include "textflag.h"

// func wkvSeqAVX512(st, r, w, k, v, a, b, y *float32, stride, n int)
// Runs n tokens of one head's recurrence (see wkvGeneric) on its state
// held transposed, st[j·64+i] = S[i][j], so that every vector runs along
// the value rows i and no sum crosses lanes:
//
//	sa = Σ_j a[j]·Sᵀ[j]
//	Sᵀ[j] = Sᵀ[j]·w[j] + k[j]·v + b[j]·sa
//	y = Σ_j r[j]·Sᵀ[j] (new state)
//
// r..y address the first token's 64 values; the next token's are stride
// bytes further (stride may be negative: a reversed sequence).
TEXT ·wkvSeqAVX512(SB), NOSPLIT, $0-80
	MOVQ st+0(FP), DI
	MOVQ r+8(FP), R8
	MOVQ w+16(FP), R9
	MOVQ k+24(FP), R10
	MOVQ v+32(FP), R11
	MOVQ a+40(FP), R12
	MOVQ b+48(FP), R13
	MOVQ y+56(FP), R14
	MOVQ stride+64(FP), DX
	MOVQ n+72(FP), CX
token:
	// sa, in two chains (even and odd j).
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	MOVQ DI, SI
	XORQ BX, BX
sa:
	VBROADCASTSS (R12)(BX*1), Z24
	VBROADCASTSS 4(R12)(BX*1), Z25
	VFMADD231PS 0(SI), Z24, Z4
	VFMADD231PS 64(SI), Z24, Z5
	VFMADD231PS 128(SI), Z24, Z6
	VFMADD231PS 192(SI), Z24, Z7
	VFMADD231PS 256(SI), Z25, Z8
	VFMADD231PS 320(SI), Z25, Z9
	VFMADD231PS 384(SI), Z25, Z10
	VFMADD231PS 448(SI), Z25, Z11
	ADDQ $512, SI
	ADDQ $8, BX
	CMPQ BX, $256
	JLT sa
	VADDPS Z8, Z4, Z4
	VADDPS Z9, Z5, Z5
	VADDPS Z10, Z6, Z6
	VADDPS Z11, Z7, Z7
	// Update the state and accumulate y.
	VMOVUPS 0(R11), Z0
	VMOVUPS 64(R11), Z1
	VMOVUPS 128(R11), Z2
	VMOVUPS 192(R11), Z3
	VXORPS Z16, Z16, Z16
	VXORPS Z17, Z17, Z17
	VXORPS Z18, Z18, Z18
	VXORPS Z19, Z19, Z19
	MOVQ DI, SI
	XORQ BX, BX
upd:
	VBROADCASTSS (R9)(BX*1), Z24
	VBROADCASTSS (R10)(BX*1), Z25
	VBROADCASTSS (R13)(BX*1), Z26
	VBROADCASTSS (R8)(BX*1), Z27
	VMULPS 0(SI), Z24, Z12
	VMULPS 64(SI), Z24, Z13
	VMULPS 128(SI), Z24, Z14
	VMULPS 192(SI), Z24, Z15
	VFMADD231PS Z25, Z0, Z12
	VFMADD231PS Z25, Z1, Z13
	VFMADD231PS Z25, Z2, Z14
	VFMADD231PS Z25, Z3, Z15
	VFMADD231PS Z26, Z4, Z12
	VFMADD231PS Z26, Z5, Z13
	VFMADD231PS Z26, Z6, Z14
	VFMADD231PS Z26, Z7, Z15
	VMOVUPS Z12, 0(SI)
	VMOVUPS Z13, 64(SI)
	VMOVUPS Z14, 128(SI)
	VMOVUPS Z15, 192(SI)
	VFMADD231PS Z27, Z12, Z16
	VFMADD231PS Z27, Z13, Z17
	VFMADD231PS Z27, Z14, Z18
	VFMADD231PS Z27, Z15, Z19
	ADDQ $256, SI
	ADDQ $4, BX
	CMPQ BX, $256
	JLT upd
	VMOVUPS Z16, 0(R14)
	VMOVUPS Z17, 64(R14)
	VMOVUPS Z18, 128(R14)
	VMOVUPS Z19, 192(R14)
	ADDQ DX, R8
	ADDQ DX, R9
	ADDQ DX, R10
	ADDQ DX, R11
	ADDQ DX, R12
	ADDQ DX, R13
	ADDQ DX, R14
	DECQ CX
	JNZ token
	VZEROUPPER
	RET
