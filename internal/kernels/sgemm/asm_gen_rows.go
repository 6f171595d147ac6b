//go:build ignore

// This file holds the generators of the single-row kernels and packing
// transposes; see asm_gen.go.

package main

import "fmt"

// row512 writes rowAVX512: one output row over up to 8 zmm columns, with
// the same per-element arithmetic as kernelAVX512.
func row512() {
	const nvec = 8
	p("// func rowAVX512(kc int, a, b *float32, bs, ps int, c *float32, alpha, beta float32, mask0, mask1 uint64, nvec int)")
	p("TEXT ·rowAVX512(SB), NOSPLIT, $0-80")
	p("\tMOVQ kc+0(FP), CX")
	p("\tMOVQ a+8(FP), SI")
	p("\tMOVQ b+16(FP), DX")
	p("\tMOVQ bs+24(FP), R8")
	p("\tSHLQ $2, R8")
	p("\tMOVQ ps+32(FP), R9")
	p("\tSHLQ $2, R9")
	// Vector v (0..7) of row p sits at b + p*bs + (v/2)*ps + (v%2)*16
	// floats. DX, R10, R11 and R12 hold the four pair bases.
	for v := 0; v < nvec; v++ {
		p("\tVPXORD Z%d, Z%d, Z%d", v, v, v)
	}
	p("\tLEAQ (DX)(R9*1), R10")
	p("\tLEAQ (R10)(R9*1), R11")
	p("\tLEAQ (R11)(R9*1), R12")
	p("\tMOVQ nvec+72(FP), AX")
	for g := 1; g < nvec; g++ {
		p("\tCMPQ AX, $%d", g)
		p("\tJEQ r512n%d", g)
	}
	p("\tJMP r512n%d", nvec)
	base := []string{"DX", "R10", "R11", "R12"}
	for g := 1; g <= nvec; g++ {
		p("r512n%d:", g)
		p("\tMOVQ CX, BX")
		p("r512loop%d:", g)
		p("\tVBROADCASTSS (SI), Z16")
		for v := 0; v < g; v++ {
			p("\tVFMADD231PS %d(%s), Z16, Z%d", 64*(v%2), base[v/2], v)
		}
		p("\tADDQ $4, SI")
		for q := 0; q < (g+1)/2; q++ {
			p("\tADDQ R8, %s", base[q])
		}
		p("\tDECQ BX")
		p("\tJNZ r512loop%d", g)
		p("\tJMP r512store")
	}
	p("r512store:")
	p("\tMOVQ c+40(FP), DI")
	p("\tKMOVQ mask0+56(FP), K1")
	p("\tKMOVQ mask1+64(FP), K2")
	p("\tVBROADCASTSS alpha+48(FP), Z17")
	p("\tMOVL beta+52(FP), BX")
	p("\tTESTL $0x7fffffff, BX")
	p("\tJZ r512beta0")
	p("\tVBROADCASTSS beta+52(FP), Z18")
	for v := 0; v < nvec; v++ {
		k := 1 + v/4
		p("\tVMOVUPS.Z %d(DI), K%d, Z19", 64*v, k)
		p("\tVMULPS Z18, Z19, Z19")
		p("\tVFMADD231PS Z17, Z%d, Z19", v)
		p("\tVMOVUPS Z19, K%d, %d(DI)", k, 64*v)
		p("\tKSHIFTRQ $16, K%d, K%d", k, k)
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("r512beta0:")
	for v := 0; v < nvec; v++ {
		k := 1 + v/4
		p("\tVMULPS Z17, Z%d, Z%d", v, v)
		p("\tVMOVUPS Z%d, K%d, %d(DI)", v, k, 64*v)
		p("\tKSHIFTRQ $16, K%d, K%d", k, k)
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// transpose writes transposeAVX512x<rows>: blocks of 16 columns of rows
// rows of src become 16 rows of rows floats of dst.
func transpose(rows int) {
	name := fmt.Sprintf("transpose%dAVX512", rows)
	p("// func %s(dst *float32, ds int, src *float32, ss int, blocks int)", name)
	p("TEXT ·%s(SB), NOSPLIT, $0-40", name)
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ ds+8(FP), R8")
	p("\tSHLQ $2, R8")
	p("\tMOVQ src+16(FP), SI")
	p("\tMOVQ ss+24(FP), R9")
	p("\tSHLQ $2, R9")
	p("\tMOVQ blocks+32(FP), CX")
	p("\tLEAQ (R9)(R9*2), R13") // 3*ss
	p("\tLEAQ (SI)(R9*4), R10")
	p("\tLEAQ (R10)(R9*4), R11")
	p("\tLEAQ (R11)(R9*4), R12")
	p("\tLEAQ (R8)(R8*2), R14") // 3*ds
	p("\tMOVL $%d, AX", 1<<rows-1)
	p("\tKMOVW AX, K1")
	for r := rows; r < 16; r++ {
		p("\tVPXORD Z%d, Z%d, Z%d", r, r, r)
	}
	p("%sloop:", name)
	bases := []string{"SI", "R10", "R11", "R12"}
	for r := 0; r < rows; r++ {
		b := bases[r/4]
		switch r % 4 {
		case 0:
			p("\tVMOVUPS (%s), Z%d", b, r)
		case 1:
			p("\tVMOVUPS (%s)(R9*1), Z%d", b, r)
		case 2:
			p("\tVMOVUPS (%s)(R9*2), Z%d", b, r)
		case 3:
			p("\tVMOVUPS (%s)(R13*1), Z%d", b, r)
		}
	}
	// Stage 1: interleave row pairs (t in Z16..Z31).
	for q := 0; q < 8; q++ {
		p("\tVUNPCKLPS Z%d, Z%d, Z%d", 2*q+1, 2*q, 16+2*q)
		p("\tVUNPCKHPS Z%d, Z%d, Z%d", 2*q+1, 2*q, 17+2*q)
	}
	// Stage 2: u (in Z0..Z15) from t pairs.
	for g := 0; g < 4; g++ {
		t := 16 + 4*g
		u := 4 * g
		p("\tVUNPCKLPD Z%d, Z%d, Z%d", t+2, t, u)
		p("\tVUNPCKHPD Z%d, Z%d, Z%d", t+2, t, u+1)
		p("\tVUNPCKLPD Z%d, Z%d, Z%d", t+3, t+1, u+2)
		p("\tVUNPCKHPD Z%d, Z%d, Z%d", t+3, t+1, u+3)
	}
	// Stage 3: v (Z16..Z31): v[i] from (u[i], u[i+4]) for i<4 (0x88) and
	// v[i+4] (0xdd); v[8+i], v[12+i] from (u[8+i], u[12+i]).
	for h := 0; h < 2; h++ {
		for i := 0; i < 4; i++ {
			a, b := 8*h+i, 8*h+i+4
			p("\tVSHUFF32X4 $0x88, Z%d, Z%d, Z%d", b, a, 16+8*h+i)
			p("\tVSHUFF32X4 $0xdd, Z%d, Z%d, Z%d", b, a, 16+8*h+i+4)
		}
	}
	// Stage 4: w[i] = (v[i], v[i+8]) 0x88, w[i+8] 0xdd, stored as rows:
	// row w of dst is at DI + w*ds; BX, DX, R15 hold DI + 4, 8, 12 rows.
	p("\tLEAQ (DI)(R8*4), BX")
	p("\tLEAQ (BX)(R8*4), DX")
	p("\tLEAQ (DX)(R8*4), R15")
	dsts := []string{"DI", "BX", "DX", "R15"}
	for i := 0; i < 8; i++ {
		p("\tVSHUFF32X4 $0x88, Z%d, Z%d, Z0", 24+i, 16+i)
		p("\tVSHUFF32X4 $0xdd, Z%d, Z%d, Z1", 24+i, 16+i)
		for j, w := range []int{i, i + 8} {
			b := dsts[w/4]
			var addr string
			switch w % 4 {
			case 0:
				addr = "(" + b + ")"
			case 1:
				addr = "(" + b + ")(R8*1)"
			case 2:
				addr = "(" + b + ")(R8*2)"
			case 3:
				addr = "(" + b + ")(R14*1)"
			}
			p("\tVMOVUPS Z%d, K1, %s", j, addr)
		}
	}
	for r := rows; r < 16; r++ {
		p("\tVPXORD Z%d, Z%d, Z%d", r, r, r)
	}
	for _, b := range bases {
		p("\tADDQ $64, %s", b)
	}
	p("\tLEAQ (DI)(R8*8), DI")
	p("\tLEAQ (DI)(R8*8), DI")
	p("\tDECQ CX")
	p("\tJNZ %sloop", name)
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// rowT512 writes rowTAVX512: 32 outputs of a single-row product with a
// transposed B, each a chain of FMAs over p in order (the arithmetic of
// kernelAVX512). Blocks of 16 columns of 16 rows are transposed in
// registers, with renaming so that 18 registers suffice per group.
func rowT512() {
	p("// func rowTAVX512(kc int, a, b *float32, ldb int, c *float32, alpha, beta float32, mask uint32)")
	p("TEXT ·rowTAVX512(SB), NOSPLIT, $0-52")
	p("\tMOVQ kc+0(FP), CX")
	p("\tMOVQ CX, R8")
	p("\tANDQ $15, R8")
	p("\tSHRQ $4, CX")
	p("\tMOVQ a+8(FP), DX")
	p("\tMOVQ b+16(FP), SI")
	p("\tMOVQ ldb+24(FP), R9")
	p("\tSHLQ $2, R9")
	p("\tLEAQ (R9)(R9*2), R13")
	bases := []string{"SI", "R10", "R11", "R12", "R14", "R15", "BX", "DI"}
	for i := 1; i < len(bases); i++ {
		p("\tLEAQ (%s)(R9*4), %s", bases[i-1], bases[i])
	}
	acc := []string{"Z30", "Z31"}
	for _, a := range acc {
		p("\tVPXORD %s, %s, %s", a, a, a)
	}
	// group emits the transposes and FMAs of one group of 16 rows; masked
	// loads zero columns beyond the tail, and FMAs stop at the tail count.
	group := func(g int, tail bool) {
		free := []int{}
		for r := 16; r < 30; r++ {
			free = append(free, r)
		}
		reg := make([]int, 16) // logical value -> physical register
		for r := 0; r < 16; r++ {
			reg[r] = r
			b := bases[4*g+r/4]
			idx := [...]string{"", "(R9*1)", "(R9*2)", "(R13*1)"}[r%4]
			if tail {
				p("\tVMOVUPS.Z (%s)%s, K1, Z%d", b, idx, r)
			} else {
				p("\tPREFETCHT0 %d(%s)%s", rowTPrefetch, b, idx)
				p("\tVMOVUPS (%s)%s, Z%d", b, idx, r)
			}
		}
		alloc := func() int { r := free[0]; free = free[1:]; return r }
		release := func(rs ...int) { free = append(free, rs...) }
		// pairOp computes out[o1] = op1(in[x], in[y]), out[o2] = op2(...).
		pairs := func(op1, op2, imm1, imm2 string, x, y int) (int, int) {
			a, b := alloc(), alloc()
			p("\t%s %sZ%d, Z%d, Z%d", op1, imm1, reg[y], reg[x], a)
			p("\t%s %sZ%d, Z%d, Z%d", op2, imm2, reg[y], reg[x], b)
			release(reg[x], reg[y])
			return a, b
		}
		next := make([]int, 16)
		for q := 0; q < 8; q++ {
			next[2*q], next[2*q+1] = pairs("VUNPCKLPS", "VUNPCKHPS", "", "", 2*q, 2*q+1)
		}
		copy(reg, next)
		for h := 0; h < 4; h++ {
			t := 4 * h
			u0, u1 := pairs("VUNPCKLPD", "VUNPCKHPD", "", "", t, t+2)
			u2, u3 := pairs("VUNPCKLPD", "VUNPCKHPD", "", "", t+1, t+3)
			next[t], next[t+1], next[t+2], next[t+3] = u0, u1, u2, u3
		}
		copy(reg, next)
		for h := 0; h < 2; h++ {
			for i := 0; i < 4; i++ {
				next[8*h+i], next[8*h+i+4] = pairs("VSHUFF32X4", "VSHUFF32X4", "$0x88, ", "$0xdd, ", 8*h+i, 8*h+i+4)
			}
		}
		copy(reg, next)
		for i := 0; i < 8; i++ {
			next[i], next[i+8] = pairs("VSHUFF32X4", "VSHUFF32X4", "$0x88, ", "$0xdd, ", i, i+8)
		}
		copy(reg, next)
		// reg[p] now holds column p: lane j = row j, element p.
		for q := 0; q < 16; q++ {
			if tail {
				p("\tCMPQ R8, $%d", q)
				p("\tJLE rt512tail%ddone", g)
			}
			p("\tVFMADD231PS.BCST %d(DX), Z%d, %s", 4*q, reg[q], acc[g])
		}
		if tail {
			p("rt512tail%ddone:", g)
		}
	}
	p("\tTESTQ CX, CX")
	p("\tJZ rt512tail")
	p("rt512loop:")
	group(0, false)
	group(1, false)
	for _, b := range bases {
		p("\tADDQ $64, %s", b)
	}
	p("\tADDQ $64, DX")
	p("\tDECQ CX")
	p("\tJNZ rt512loop")
	p("rt512tail:")
	p("\tTESTQ R8, R8")
	p("\tJZ rt512store")
	p("\tMOVQ R8, CX")
	p("\tMOVL $1, AX")
	p("\tSHLL CX, AX")
	p("\tDECL AX")
	p("\tKMOVW AX, K1")
	group(0, true)
	group(1, true)
	p("rt512store:")
	p("\tMOVQ c+32(FP), DI")
	p("\tMOVL mask+48(FP), AX")
	p("\tKMOVW AX, K1")
	p("\tSHRL $16, AX")
	p("\tKMOVW AX, K2")
	p("\tVBROADCASTSS alpha+40(FP), Z28")
	p("\tMOVL beta+44(FP), AX")
	p("\tTESTL $0x7fffffff, AX")
	p("\tJZ rt512beta0")
	p("\tVBROADCASTSS beta+44(FP), Z29")
	for g, a := range acc {
		p("\tVMOVUPS.Z %d(DI), K%d, Z0", 64*g, g+1)
		p("\tVMULPS Z29, Z0, Z0")
		p("\tVFMADD231PS Z28, %s, Z0", a)
		p("\tVMOVUPS Z0, K%d, %d(DI)", g+1, 64*g)
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("rt512beta0:")
	for g, a := range acc {
		p("\tVMULPS Z28, %s, %s", a, a)
		p("\tVMOVUPS %s, K%d, %d(DI)", a, g+1, 64*g)
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// row256 writes rowAVX2: one output row over up to 8 ymm columns, with the
// same per-element arithmetic as kernelAVX2.
func row256() {
	const nvec = 8
	p("// func rowAVX2(kc int, a, b *float32, bs, ps int, c *float32, alpha, beta float32, masks *[64]int32, nvec int)")
	p("TEXT ·rowAVX2(SB), NOSPLIT, $0-72")
	p("\tMOVQ kc+0(FP), CX")
	p("\tMOVQ a+8(FP), SI")
	p("\tMOVQ b+16(FP), DX")
	p("\tMOVQ bs+24(FP), R8")
	p("\tSHLQ $2, R8")
	p("\tMOVQ ps+32(FP), R9")
	p("\tSHLQ $2, R9")
	for v := 0; v < nvec; v++ {
		p("\tVXORPS Y%d, Y%d, Y%d", v, v, v)
	}
	p("\tLEAQ (DX)(R9*1), R10")
	p("\tLEAQ (R10)(R9*1), R11")
	p("\tLEAQ (R11)(R9*1), R12")
	p("\tMOVQ nvec+64(FP), AX")
	for g := 1; g < nvec; g++ {
		p("\tCMPQ AX, $%d", g)
		p("\tJEQ r256n%d", g)
	}
	p("\tJMP r256n%d", nvec)
	base := []string{"DX", "R10", "R11", "R12"}
	for g := 1; g <= nvec; g++ {
		p("r256n%d:", g)
		p("\tMOVQ CX, BX")
		p("r256loop%d:", g)
		p("\tVBROADCASTSS (SI), Y8")
		for v := 0; v < g; v++ {
			p("\tVFMADD231PS %d(%s), Y8, Y%d", 32*(v%2), base[v/2], v)
		}
		p("\tADDQ $4, SI")
		for q := 0; q < (g+1)/2; q++ {
			p("\tADDQ R8, %s", base[q])
		}
		p("\tDECQ BX")
		p("\tJNZ r256loop%d", g)
		p("\tJMP r256store")
	}
	p("r256store:")
	p("\tMOVQ c+40(FP), DI")
	p("\tMOVQ masks+56(FP), R9")
	p("\tVBROADCASTSS alpha+48(FP), Y9")
	p("\tMOVL beta+52(FP), BX")
	p("\tTESTL $0x7fffffff, BX")
	p("\tJZ r256beta0")
	p("\tVBROADCASTSS beta+52(FP), Y10")
	for v := 0; v < nvec; v++ {
		p("\tCMPQ AX, $%d", v)
		p("\tJLE r256done")
		p("\tVMOVUPS %d(R9), Y12", 32*v)
		p("\tVMASKMOVPS %d(DI), Y12, Y11", 32*v)
		p("\tVMULPS Y10, Y11, Y11")
		p("\tVFMADD231PS Y9, Y%d, Y11", v)
		p("\tVMASKMOVPS Y11, Y12, %d(DI)", 32*v)
	}
	p("\tJMP r256done")
	p("r256beta0:")
	for v := 0; v < nvec; v++ {
		p("\tCMPQ AX, $%d", v)
		p("\tJLE r256done")
		p("\tVMOVUPS %d(R9), Y12", 32*v)
		p("\tVMULPS Y9, Y%d, Y%d", v, v)
		p("\tVMASKMOVPS Y%d, Y12, %d(DI)", v, 32*v)
	}
	p("r256done:")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// transpose256 writes transpose<rows>AVX2: blocks of 8 columns of rows (6
// or 8) rows of src become 8 rows of rows floats of dst.
func transpose256(rows int) {
	name := fmt.Sprintf("transpose%dAVX2", rows)
	p("// func %s(dst *float32, ds int, src *float32, ss int, blocks int)", name)
	p("TEXT ·%s(SB), NOSPLIT, $0-40", name)
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ ds+8(FP), R8")
	p("\tSHLQ $2, R8")
	p("\tMOVQ src+16(FP), SI")
	p("\tMOVQ ss+24(FP), R9")
	p("\tSHLQ $2, R9")
	p("\tMOVQ blocks+32(FP), CX")
	p("\tLEAQ (R9)(R9*2), R13") // 3*ss
	p("\tLEAQ (SI)(R9*4), R10")
	p("\tLEAQ (R8)(R8*2), R14") // 3*ds
	p("%sloop:", name)
	bases := []string{"SI", "R10"}
	idx := [...]string{"", "(R9*1)", "(R9*2)", "(R13*1)"}
	for r := 0; r < 8; r++ {
		if r >= rows {
			p("\tVXORPS Y%d, Y%d, Y%d", r, r, r)
			continue
		}
		p("\tVMOVUPS (%s)%s, Y%d", bases[r/4], idx[r%4], r)
	}
	for q := 0; q < 4; q++ {
		p("\tVUNPCKLPS Y%d, Y%d, Y%d", 2*q+1, 2*q, 8+2*q)
		p("\tVUNPCKHPS Y%d, Y%d, Y%d", 2*q+1, 2*q, 9+2*q)
	}
	for h := 0; h < 2; h++ {
		t := 8 + 4*h
		u := 4 * h
		p("\tVSHUFPS $0x44, Y%d, Y%d, Y%d", t+2, t, u)
		p("\tVSHUFPS $0xee, Y%d, Y%d, Y%d", t+2, t, u+1)
		p("\tVSHUFPS $0x44, Y%d, Y%d, Y%d", t+3, t+1, u+2)
		p("\tVSHUFPS $0xee, Y%d, Y%d, Y%d", t+3, t+1, u+3)
	}
	for i := 0; i < 4; i++ {
		p("\tVPERM2F128 $0x20, Y%d, Y%d, Y%d", 4+i, i, 8+i)
		p("\tVPERM2F128 $0x31, Y%d, Y%d, Y%d", 4+i, i, 12+i)
	}
	// Column p is in Y(8+p); row p of dst is at DI + p*ds (BX = DI + 4 rows).
	p("\tLEAQ (DI)(R8*4), BX")
	dsts := []string{"DI", "BX"}
	for q := 0; q < 8; q++ {
		addr := func(off int) string {
			o := ""
			if off != 0 {
				o = fmt.Sprint(off)
			}
			return o + "(" + dsts[q/4] + ")" + idx[q%4][0:0] + map[int]string{0: "", 1: "(R8*1)", 2: "(R8*2)", 3: "(R14*1)"}[q%4]
		}
		if rows == 8 {
			p("\tVMOVUPS Y%d, %s", 8+q, addr(0))
			continue
		}
		p("\tVMOVUPS X%d, %s", 8+q, addr(0))
		p("\tVEXTRACTF128 $1, Y%d, X%d", 8+q, 8+q)
		p("\tVMOVSD X%d, %s", 8+q, addr(16))
	}
	p("\tADDQ $32, SI")
	p("\tADDQ $32, R10")
	p("\tLEAQ (DI)(R8*8), DI")
	p("\tDECQ CX")
	p("\tJNZ %sloop", name)
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// rowStream512 writes rowStreamAVX512: a single-row product over n columns
// of an unpacked B for one k block, streaming rows of B four at a time
// through an accumulator row t (the per-element arithmetic of
// kernelAVX512).
func rowStream512() {
	p("// func rowStreamAVX512(kc int, a, b *float32, ldb int, c *float32, alpha, beta float32, n int, t *float32)")
	p("TEXT ·rowStreamAVX512(SB), NOSPLIT, $0-64")
	p("\tMOVQ a+8(FP), SI")
	p("\tMOVQ b+16(FP), DX")
	p("\tMOVQ ldb+24(FP), R8")
	p("\tSHLQ $2, R8")
	p("\tMOVQ n+48(FP), R9")
	p("\tMOVQ t+56(FP), DI")
	// Full vectors: R10 = n/16; tail mask K1 = low n%16 bits.
	p("\tMOVQ R9, R10")
	p("\tSHRQ $4, R10")
	p("\tMOVQ R9, CX")
	p("\tANDQ $15, CX")
	p("\tMOVL $1, AX")
	p("\tSHLL CX, AX")
	p("\tDECL AX")
	p("\tKMOVW AX, K1")
	p("\tMOVQ CX, R15") // tail count
	// t = 0.
	p("\tVPXORD Z8, Z8, Z8")
	p("\tMOVQ DI, AX")
	p("\tMOVQ R10, CX")
	p("\tTESTQ CX, CX")
	p("\tJZ rs512zt")
	p("rs512zero:")
	p("\tVMOVUPS Z8, (AX)")
	p("\tADDQ $64, AX")
	p("\tDECQ CX")
	p("\tJNZ rs512zero")
	p("rs512zt:")
	p("\tVMOVUPS Z8, K1, (AX)")
	// Row loop: R11 = rows left.
	p("\tMOVQ kc+0(FP), R11")
	p("\tLEAQ (R8)(R8*2), R12") // 3*ldb
	// rows emits one pass adding r rows (1 or 4) of B into t.
	rows := func(r int, label string) {
		for i := 0; i < r; i++ {
			p("\tVBROADCASTSS %d(SI), Z%d", 4*i, i)
		}
		rowAddr := func(i int, off string) string {
			base := "BX"
			if i >= 4 {
				base = "R13"
			}
			switch i % 4 {
			case 0:
				return off + "(" + base + ")"
			case 1:
				return off + "(" + base + ")(R8*1)"
			case 2:
				return off + "(" + base + ")(R8*2)"
			}
			return off + "(" + base + ")(R12*1)"
		}
		p("\tMOVQ DX, BX")
		if r > 4 {
			p("\tLEAQ (DX)(R8*4), R13")
		}
		p("\tMOVQ DI, AX")
		p("\tMOVQ R10, CX")
		p("\tTESTQ CX, CX")
		p("\tJZ %stail", label)
		p("%scols:", label)
		p("\tVMOVUPS (AX), Z8")
		for i := 0; i < r; i++ {
			p("\tVFMADD231PS %s, Z%d, Z8", rowAddr(i, ""), i)
		}
		p("\tVMOVUPS Z8, (AX)")
		p("\tADDQ $64, AX")
		p("\tADDQ $64, BX")
		if r > 4 {
			p("\tADDQ $64, R13")
		}
		p("\tDECQ CX")
		p("\tJNZ %scols", label)
		p("%stail:", label)
		p("\tTESTQ R15, R15")
		p("\tJZ %snext", label)
		p("\tVMOVUPS.Z (AX), K1, Z8")
		for i := 0; i < r; i++ {
			p("\tVMOVUPS.Z %s, K1, Z9", rowAddr(i, ""))
			p("\tVFMADD231PS Z9, Z%d, Z8", i)
		}
		p("\tVMOVUPS Z8, K1, (AX)")
		p("%snext:", label)
		p("\tADDQ $%d, SI", 4*r)
		switch r {
		case 8:
			p("\tLEAQ (DX)(R8*8), DX")
		case 4:
			p("\tLEAQ (DX)(R8*4), DX")
		default:
			p("\tADDQ R8, DX")
		}
		p("\tSUBQ $%d, R11", r)
	}
	p("rs512eight:")
	p("\tCMPQ R11, $8")
	p("\tJLT rs512four")
	rows(8, "rs512r8")
	p("\tJMP rs512eight")
	p("rs512four:")
	p("\tCMPQ R11, $4")
	p("\tJLT rs512ones")
	rows(4, "rs512r4")
	p("\tJMP rs512four")
	p("rs512ones:")
	p("\tTESTQ R11, R11")
	p("\tJZ rs512store")
	rows(1, "rs512r1")
	p("\tJMP rs512ones")
	// c = fma(alpha, t, beta*c), or alpha*t when beta == 0.
	p("rs512store:")
	p("\tMOVQ c+32(FP), BX")
	p("\tMOVQ DI, AX")
	p("\tVBROADCASTSS alpha+40(FP), Z0")
	p("\tVBROADCASTSS beta+44(FP), Z1")
	p("\tMOVL beta+44(FP), DX")
	p("\tMOVQ R10, CX")
	p("\tTESTL $0x7fffffff, DX")
	p("\tJZ rs512b0")
	p("\tTESTQ CX, CX")
	p("\tJZ rs512ct")
	p("rs512c:")
	p("\tVMULPS (BX), Z1, Z8")
	p("\tVFMADD231PS (AX), Z0, Z8")
	p("\tVMOVUPS Z8, (BX)")
	p("\tADDQ $64, AX")
	p("\tADDQ $64, BX")
	p("\tDECQ CX")
	p("\tJNZ rs512c")
	p("rs512ct:")
	p("\tVMOVUPS.Z (BX), K1, Z8")
	p("\tVMULPS Z1, Z8, Z8")
	p("\tVMOVUPS.Z (AX), K1, Z9")
	p("\tVFMADD231PS Z0, Z9, Z8")
	p("\tVMOVUPS Z8, K1, (BX)")
	p("\tVZEROUPPER")
	p("\tRET")
	p("rs512b0:")
	p("\tTESTQ CX, CX")
	p("\tJZ rs512b0t")
	p("rs512b0c:")
	p("\tVMULPS (AX), Z0, Z8")
	p("\tVMOVUPS Z8, (BX)")
	p("\tADDQ $64, AX")
	p("\tADDQ $64, BX")
	p("\tDECQ CX")
	p("\tJNZ rs512b0c")
	p("rs512b0t:")
	p("\tVMOVUPS.Z (AX), K1, Z9")
	p("\tVMULPS Z0, Z9, Z8")
	p("\tVMOVUPS Z8, K1, (BX)")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}
