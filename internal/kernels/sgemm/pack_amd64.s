//go:build !purego

#include "textflag.h"

// func packCopyAVX512(dst *float32, ds int, src *float32, ss int, kc int, lmask, smask uint32)
TEXT ·packCopyAVX512(SB), NOSPLIT, $0-48
	MOVQ  dst+0(FP), DI
	MOVQ  ds+8(FP), R8
	SHLQ  $2, R8
	MOVQ  src+16(FP), SI
	MOVQ  ss+24(FP), R9
	SHLQ  $2, R9
	MOVQ  kc+32(FP), CX
	MOVL  lmask+40(FP), R10
	KMOVD R10, K1
	KSHIFTRD $16, K1, K2
	MOVL  smask+44(FP), R11
	KMOVD R11, K3
	KSHIFTRD $16, K3, K4

copyloop:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z 64(SI), K2, Z1
	VMOVUPS   Z0, K3, (DI)
	VMOVUPS   Z1, K4, 64(DI)
	ADDQ      R9, SI
	ADDQ      R8, DI
	DECQ      CX
	JNZ       copyloop
	VZEROUPPER
	RET
