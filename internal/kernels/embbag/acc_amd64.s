//go:build !purego

#include "textflag.h"

// STEP16_512 adds the 16 codes held as int32 in Z0 to out[0:16] at DI:
// out = float32(double(s)*double(q) + double(out + b)), s in Z1 (double),
// b in Z2 (float).
#define STEP16_512 \
	VCVTDQ2PD     Y0, Z4;        \
	VEXTRACTI32X8 $1, Z0, Y5;    \
	VCVTDQ2PD     Y5, Z5;        \
	VADDPS        (DI), Z2, Z3;  \
	VCVTPS2PD     Y3, Z6;        \
	VEXTRACTF32X8 $1, Z3, Y7;    \
	VCVTPS2PD     Y7, Z7;        \
	VFMADD231PD   Z1, Z4, Z6;    \
	VFMADD231PD   Z1, Z5, Z7;    \
	VCVTPD2PS     Z6, Y6;        \
	VCVTPD2PS     Z7, Y7;        \
	VINSERTF32X8  $1, Y7, Z6, Z6; \
	VMOVUPS       Z6, (DI)

// STEP8_256 is STEP16_512 for 8 codes in Y0 with AVX2: s in Y1 (double),
// b in Y2 (float).
#define STEP8_256 \
	VCVTDQ2PD    X0, Y4;        \
	VEXTRACTI128 $1, Y0, X5;    \
	VCVTDQ2PD    X5, Y5;        \
	VADDPS       (DI), Y2, Y3;  \
	VCVTPS2PD    X3, Y6;        \
	VEXTRACTF128 $1, Y3, X7;    \
	VCVTPS2PD    X7, Y7;        \
	VFMADD231PD  Y1, Y4, Y6;    \
	VFMADD231PD  Y1, Y5, Y7;    \
	VCVTPD2PSY   Y6, X6;        \
	VCVTPD2PSY   Y7, X7;        \
	VINSERTF128  $1, X7, Y6, Y6; \
	VMOVUPS      Y6, (DI)

// NIBBLES expands the 8 bytes at SI into 16 bytes in X0 (low nibble
// first), using the word masks 0x000f in X10 and 0x0f00 in X11.
#define NIBBLES \
	VPMOVZXBW (SI), X0;   \
	VPSLLW    $4, X0, X8; \
	VPAND     X10, X0, X0; \
	VPAND     X11, X8, X8; \
	VPOR      X8, X0, X0

// func acc8AVX512(out *float32, q *uint8, n16 int, s float64, b float32)
TEXT ·acc8AVX512(SB), NOSPLIT, $0-36
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ n16+16(FP), CX
	VBROADCASTSD s+24(FP), Z1
	VBROADCASTSS b+32(FP), Z2

acc8z:
	TESTQ CX, CX
	JEQ   acc8zdone
	VPMOVZXBD (SI), Z0
	STEP16_512
	ADDQ $16, SI
	ADDQ $64, DI
	DECQ CX
	JMP  acc8z

acc8zdone:
	VZEROUPPER
	RET

// func acc4AVX512(out *float32, q *uint8, n16 int, s float64, b float32)
TEXT ·acc4AVX512(SB), NOSPLIT, $0-36
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ n16+16(FP), CX
	VBROADCASTSD s+24(FP), Z1
	VBROADCASTSS b+32(FP), Z2
	MOVL $0x000f000f, AX
	MOVQ AX, X10
	VPBROADCASTD X10, X10
	MOVL $0x0f000f00, AX
	MOVQ AX, X11
	VPBROADCASTD X11, X11

acc4z:
	TESTQ CX, CX
	JEQ   acc4zdone
	NIBBLES
	VPMOVZXBD X0, Z0
	STEP16_512
	ADDQ $8, SI
	ADDQ $64, DI
	DECQ CX
	JMP  acc4z

acc4zdone:
	VZEROUPPER
	RET

// func acc8AVX2(out *float32, q *uint8, n8 int, s float64, b float32)
TEXT ·acc8AVX2(SB), NOSPLIT, $0-36
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ n8+16(FP), CX
	VBROADCASTSD s+24(FP), Y1
	VBROADCASTSS b+32(FP), Y2

acc8y:
	TESTQ CX, CX
	JEQ   acc8ydone
	VPMOVZXBD (SI), Y0
	STEP8_256
	ADDQ $8, SI
	ADDQ $32, DI
	DECQ CX
	JMP  acc8y

acc8ydone:
	VZEROUPPER
	RET

// func acc4AVX2(out *float32, q *uint8, n16 int, s float64, b float32)
TEXT ·acc4AVX2(SB), NOSPLIT, $0-36
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ n16+16(FP), CX
	VBROADCASTSD s+24(FP), Y1
	VBROADCASTSS b+32(FP), Y2
	MOVL $0x000f000f, AX
	MOVQ AX, X10
	VPBROADCASTD X10, X10
	MOVL $0x0f000f00, AX
	MOVQ AX, X11
	VPBROADCASTD X11, X11

acc4y:
	TESTQ CX, CX
	JEQ   acc4ydone
	NIBBLES
	VPSRLDQ   $8, X0, X9
	VPMOVZXBD X0, Y0
	STEP8_256
	VPMOVZXBD X9, Y0
	ADDQ $32, DI
	STEP8_256
	ADDQ $8, SI
	ADDQ $32, DI
	DECQ CX
	JMP  acc4y

acc4ydone:
	VZEROUPPER
	RET

// func prefetch3(p *byte)
TEXT ·prefetch3(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 128(AX)
	RET
