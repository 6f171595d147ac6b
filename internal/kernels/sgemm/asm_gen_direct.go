//go:build ignore

package main

import "fmt"

// kernelDirect512 writes kernelDirectAVX512: the mr512 x 16*nv512 tile of
// kernelAVX512 with B read in place (row p of the tile's B at
// b + p*ldb, masked to the tile's columns) instead of from a packed panel,
// and an epilogue that adds nothing, the old C, or a per-row bias.
func kernelDirect512() {
	acc := func(i, v int) string { return fmt.Sprintf("Z%d", i*nv512+v) }
	bReg := func(v int) string { return fmt.Sprintf("Z%d", mr512*nv512+v) }
	bc := func(i int) string { return fmt.Sprintf("Z%d", mr512*nv512+nv512+i%2) }
	p("// func kernelDirectAVX512(kc int, a, b *float32, ldb int, c *float32, ldc int, m int, mask uint64, bias *float32, mode int)")
	p("TEXT ·kernelDirectAVX512(SB), NOSPLIT, $0-80")
	p("\tMOVQ kc+0(FP), CX")
	p("\tMOVQ a+8(FP), SI")
	p("\tMOVQ b+16(FP), DX")
	p("\tMOVQ ldb+24(FP), R9")
	p("\tSHLQ $2, R9")
	p("\tLEAQ (R9)(R9*2), R10")
	p("\tKMOVQ mask+56(FP), K1")
	for v := 1; v < nv512; v++ {
		p("\tKSHIFTRQ $%d, K1, K%d", 16*v, v+1)
	}
	for i := 0; i < mr512; i++ {
		for v := 0; v < nv512; v++ {
			p("\tVPXORD %s, %s, %s", acc(i, v), acc(i, v), acc(i, v))
		}
	}
	rowAddr := []string{"(DX)", "(DX)(R9*1)", "(DX)(R9*2)", "(DX)(R10*1)"}
	step := func(u int) {
		for v := 0; v < nv512; v++ {
			off := ""
			if v > 0 {
				off = fmt.Sprint(64 * v)
			}
			p("\tVMOVUPS.Z %s%s, K%d, %s", off, rowAddr[u], v+1, bReg(v))
		}
		for i := 0; i < mr512; i++ {
			p("\tVBROADCASTSS %d(SI), %s", (u*mr512+i)*4, bc(i))
			for v := 0; v < nv512; v++ {
				p("\tVFMADD231PS %s, %s, %s", bReg(v), bc(i), acc(i, v))
			}
		}
	}
	p("\tCMPQ CX, $%d", unr)
	p("\tJLT kdtail")
	p("kdloop:")
	for l := 0; l < unr*mr512*4; l += 64 {
		p("\tPREFETCHT0 %d(SI)", pfDist+l)
	}
	for u := 0; u < unr; u++ {
		step(u)
	}
	p("\tADDQ $%d, SI", unr*mr512*4)
	p("\tLEAQ (DX)(R9*4), DX")
	p("\tSUBQ $%d, CX", unr)
	p("\tCMPQ CX, $%d", unr)
	p("\tJGE kdloop")
	p("kdtail:")
	p("\tTESTQ CX, CX")
	p("\tJZ kdstore")
	p("kdone:")
	step(0)
	p("\tADDQ $%d, SI", mr512*4)
	p("\tADDQ R9, DX")
	p("\tDECQ CX")
	p("\tJNZ kdone")
	p("kdstore:")
	p("\tMOVQ c+32(FP), DI")
	p("\tMOVQ ldc+40(FP), R8")
	p("\tSHLQ $2, R8")
	p("\tMOVQ m+48(FP), BX")
	p("\tMOVQ bias+64(FP), R11")
	p("\tMOVQ mode+72(FP), AX")
	tmp := bReg(0)
	rows := func(label string, body func(i int)) {
		p("%s:", label)
		for i := 0; i < mr512; i++ {
			body(i)
			if i < mr512-1 {
				p("\tDECQ BX")
				p("\tJZ kddone")
				p("\tADDQ R8, DI")
			}
		}
		p("\tJMP kddone")
	}
	p("\tCMPQ AX, $1")
	p("\tJEQ kdacc")
	p("\tCMPQ AX, $2")
	p("\tJEQ kdbias")
	rows("kdplain", func(i int) {
		for v := 0; v < nv512; v++ {
			p("\tVMOVUPS %s, K%d, %d(DI)", acc(i, v), v+1, 64*v)
		}
	})
	rows("kdacc", func(i int) {
		for v := 0; v < nv512; v++ {
			p("\tVMOVUPS.Z %d(DI), K%d, %s", 64*v, v+1, tmp)
			p("\tVADDPS %s, %s, %s", tmp, acc(i, v), tmp)
			p("\tVMOVUPS %s, K%d, %d(DI)", tmp, v+1, 64*v)
		}
	})
	rows("kdbias", func(i int) {
		p("\tVBROADCASTSS %d(R11), %s", 4*i, tmp)
		for v := 0; v < nv512; v++ {
			p("\tVADDPS %s, %s, %s", tmp, acc(i, v), acc(i, v))
			p("\tVMOVUPS %s, K%d, %d(DI)", acc(i, v), v+1, 64*v)
		}
	})
	p("kddone:")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}
