//go:build !purego

#include "textflag.h"

// func dwPlaneVNNI(src *uint8, pitch, rowStep, colStep, oh, ow, kh, dh int, idx *byte, groups int, w *int32, init int32, mult float32, zp int32, lo, hi float32, dst *uint8)
TEXT ·dwPlaneVNNI(SB), NOSPLIT, $0-120
	MOVQ src+0(FP), SI
	MOVQ pitch+8(FP), R8
	MOVQ dh+56(FP), AX
	IMULQ AX, R8
	MOVQ dst+112(FP), DI
	MOVL init+88(FP), AX
	VPBROADCASTD AX, Z20
	VBROADCASTSS mult+92(FP), Z21
	MOVL zp+96(FP), AX
	VPBROADCASTD AX, Z22
	VBROADCASTSS lo+100(FP), Z23
	VBROADCASTSS hi+104(FP), Z24
	MOVQ idx+64(FP), AX
	VMOVDQU8 0(AX), Z25
	VMOVDQU8 64(AX), Z26
	MOVQ groups+72(FP), R12
	// K1 = tail mask for ow%16 outputs.
	MOVQ ow+40(FP), CX
	ANDQ $15, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	MOVQ oh+32(FP), BX
	TESTQ BX, BX
	JEQ done

rowloop:
	MOVQ SI, R11
	MOVQ ow+40(FP), R13
	SHRQ $4, R13

blockloop:
	TESTQ R13, R13
	JEQ tail
	VPXORD Z0, Z0, Z0
	MOVQ R11, R10
	MOVQ w+80(FP), DX
	MOVQ kh+48(FP), R9

fullkh:
	VPERMB 0(R10), Z25, Z1
	VPBROADCASTD 0(DX), Z2
	VPDPBUSD Z2, Z1, Z0
	CMPQ R12, $1
	JEQ fullnext
	VPERMB 0(R10), Z26, Z3
	VPBROADCASTD 4(DX), Z4
	VPDPBUSD Z4, Z3, Z0
	ADDQ $4, DX

fullnext:
	ADDQ $4, DX
	ADDQ R8, R10
	DECQ R9
	JNZ fullkh
	VPADDD Z20, Z0, Z0
	VCVTDQ2PS Z0, Z0
	VMULPS Z21, Z0, Z0
	VMAXPS Z23, Z0, Z0
	VMINPS Z24, Z0, Z0
	VCVTPS2DQ Z0, Z0
	VPADDD Z22, Z0, Z0
	VPMOVDB Z0, 0(DI)
	ADDQ colStep+24(FP), R11
	ADDQ $16, DI
	DECQ R13
	JMP blockloop

tail:
	MOVQ ow+40(FP), CX
	ANDQ $15, CX
	JEQ nextrow
	VPXORD Z0, Z0, Z0
	MOVQ R11, R10
	MOVQ w+80(FP), DX
	MOVQ kh+48(FP), R9

tailkh:
	VPERMB 0(R10), Z25, Z1
	VPBROADCASTD 0(DX), Z2
	VPDPBUSD Z2, Z1, Z0
	CMPQ R12, $1
	JEQ tailnext
	VPERMB 0(R10), Z26, Z3
	VPBROADCASTD 4(DX), Z4
	VPDPBUSD Z4, Z3, Z0
	ADDQ $4, DX

tailnext:
	ADDQ $4, DX
	ADDQ R8, R10
	DECQ R9
	JNZ tailkh
	VPADDD Z20, Z0, Z0
	VCVTDQ2PS Z0, Z0
	VMULPS Z21, Z0, Z0
	VMAXPS Z23, Z0, Z0
	VMINPS Z24, Z0, Z0
	VCVTPS2DQ Z0, Z0
	VPADDD Z22, Z0, Z0
	VPMOVDB Z0, K1, 0(DI)
	ADDQ CX, DI

nextrow:
	ADDQ rowStep+16(FP), SI
	DECQ BX
	JNZ rowloop

done:
	VZEROUPPER
	RET
