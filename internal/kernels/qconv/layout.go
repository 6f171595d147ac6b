package qconv

import (
	"sync"

	"github.com/quanta-go/quanta/internal/cpu"

	"github.com/quanta-go/quanta/internal/kernels/conv"
)

var i32Scratch = sync.Pool{New: func() any { return new([]int32) }}

func getI32(n int) *[]int32 {
	b := i32Scratch.Get().(*[]int32)
	if cap(*b) < n {
		*b = make([]int32, n)
	}
	*b = (*b)[:n]
	return b
}

// toPaddedNHWC writes one NCHW image into a [H+2PadH][W+2PadW][cp] buffer
// whose padding (spatial, and channels C..cp) holds za.
func toPaddedNHWC(q *conv.Conv2DParams, x []uint8, cp, pw int, za uint8, dst []uint8) {
	ph := q.H + 2*q.PadH
	rowLen := pw * cp
	// Top and bottom padding rows, and the slack after the buffer.
	fill(dst[:q.PadH*rowLen], za)
	fill(dst[(q.PadH+q.H)*rowLen:], za)
	_ = ph
	hw := q.H * q.W
	if q.PadH == 0 && q.PadW == 0 && cp == q.C && useTranspose() && q.C%16 == 0 && hw >= 16 {
		// Unpadded: the whole plane is one [C][HW] -> [HW][C] transpose.
		for p := 0; p < hw; p += 16 {
			p = min(p, hw-16)
			for c := 0; c < q.C; c += 16 {
				transposeBlock(&x[c*hw+p], hw, &dst[p*cp+c], cp)
			}
		}
		fill(dst[hw*cp:], za)
		return
	}
	for i := 0; i < q.H; i++ {
		row := dst[(q.PadH+i)*rowLen : (q.PadH+i+1)*rowLen]
		fill(row[:q.PadW*cp], za)
		fill(row[(q.PadW+q.W)*cp:], za)
		px := row[q.PadW*cp : (q.PadW+q.W)*cp]
		src := x[i*q.W:]
		switch {
		case useTranspose() && cp == q.C && q.C%16 == 0 && q.W >= 16:
			// 16×16 blocks; the last pixel block overlaps the one before
			// (rewriting the same bytes) so no scalar tail is needed.
			for c := 0; c < q.C; c += 16 {
				for j := 0; j < q.W; j += 16 {
					j = min(j, q.W-16)
					transposeBlock(&src[c*hw+j], hw, &px[j*cp+c], cp)
				}
			}
		case cp == q.C && q.C%4 == 0:
			// 4 channels at a time.
			for c := 0; c < q.C; c += 4 {
				p0, p1, p2, p3 := src[c*hw:c*hw+q.W], src[(c+1)*hw:(c+1)*hw+q.W], src[(c+2)*hw:(c+2)*hw+q.W], src[(c+3)*hw:(c+3)*hw+q.W]
				for j := 0; j < q.W; j++ {
					o := j*cp + c
					px[o], px[o+1], px[o+2], px[o+3] = p0[j], p1[j], p2[j], p3[j]
				}
			}
		default:
			for j := 0; j < q.W; j++ {
				pix := px[j*cp : (j+1)*cp]
				for c := 0; c < q.C; c++ {
					pix[c] = src[c*hw+j]
				}
				fill(pix[q.C:], za)
			}
		}
	}
}

// fill sets every byte of b to v.
func fill(b []uint8, v uint8) {
	if len(b) == 0 {
		return
	}
	b[0] = v
	for n := 1; n < len(b); n *= 2 {
		copy(b[n:], b[:n])
	}
}

// nhwcToNCHW transposes [m pixels][c channels] into [c][m], in blocks that
// stay in cache.
func nhwcToNCHW(src []uint8, m, c int, dst []uint8) {
	if useTranspose() && c%16 == 0 && m >= 16 {
		for p := 0; p < m; p += 16 {
			p = min(p, m-16)
			for ch := 0; ch < c; ch += 16 {
				transposeBlock(&src[p*c+ch], c, &dst[ch*m+p], m)
			}
		}
		return
	}
	const bs = 32
	for p0 := 0; p0 < m; p0 += bs {
		p1 := min(p0+bs, m)
		for c0 := 0; c0 < c; c0 += bs {
			c1 := min(c0+bs, c)
			for ch := c0; ch < c1; ch++ {
				d := dst[ch*m : ch*m+m]
				for p := p0; p < p1; p++ {
					d[p] = src[p*c+ch]
				}
			}
		}
	}
}

// useTranspose reports whether the assembly block transpose may run.
func useTranspose() bool { return transposeBlock != nil && cpu.Max >= cpu.AVX512 }
