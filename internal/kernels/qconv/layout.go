package qconv

import (
	"encoding/binary"
	"sync"

	"github.com/quanta-go/quanta/internal/cpu"

	"github.com/quanta-go/quanta/internal/kernels/conv"
)

var i32Scratch = sync.Pool{New: func() any { return new([]int32) }}

var f32Scratch = sync.Pool{New: func() any { return new([]float32) }}

// getF32 returns a pooled float32 buffer of length n (contents arbitrary).
func getF32(n int) *[]float32 {
	b := f32Scratch.Get().(*[]float32)
	if cap(*b) < n {
		*b = make([]float32, n)
	}
	*b = (*b)[:n]
	return b
}

func getI32(n int) *[]int32 {
	b := i32Scratch.Get().(*[]int32)
	if cap(*b) < n {
		*b = make([]int32, n)
	}
	*b = (*b)[:n]
	return b
}

// wholePlane reports whether toPaddedNHWC converts the image as one
// [C][H*W] -> [H*W][C] transpose (no padding, at least 16 channels, in
// blocks of 16, the last block overlapping the one before when C is not
// a multiple of 16).
func wholePlane(q *conv.Conv2DParams, cp int) bool {
	return q.PadH == 0 && q.PadW == 0 && cp == q.C && useTranspose() && q.C >= 16 && q.H*q.W >= 16
}

// padUnits is how many independent pieces toPaddedNHWC cuts one image
// into: 16-pixel blocks for a whole-plane transpose, else padded rows.
func padUnits(q *conv.Conv2DParams, cp int) int {
	if wholePlane(q, cp) {
		return q.H * q.W / 16
	}
	return q.H + 2*q.PadH
}

// toPaddedNHWC writes units [u0, u1) (see padUnits) of one NCHW image into
// a [H+2PadH][W+2PadW][cp] buffer whose padding (spatial, and channels
// C..cp) holds za; the last unit also fills the slack after the buffer.
// Units write disjoint bytes, so they may run concurrently.
func toPaddedNHWC(q *conv.Conv2DParams, x []uint8, cp, pw int, za uint8, dst []uint8, u0, u1 int) {
	ph := q.H + 2*q.PadH
	rowLen := pw * cp
	hw := q.H * q.W
	if wholePlane(q, cp) {
		// Unpadded: the plane is one [C][HW] -> [HW][C] transpose. The
		// last unit also covers the tail with a block overlapping its own.
		nu := hw / 16
		for u := u0; u < u1; u++ {
			for c := 0; c < q.C; c += 16 {
				c := min(c, q.C-16)
				transposeBlock(&x[c*hw+u*16], hw, &dst[u*16*cp+c], cp)
			}
			if u == nu-1 {
				if p := hw - 16; p > u*16 {
					for c := 0; c < q.C; c += 16 {
						c := min(c, q.C-16)
						transposeBlock(&x[c*hw+p], hw, &dst[p*cp+c], cp)
					}
				}
				fill(dst[hw*cp:], za)
			}
		}
		return
	}
	for u := u0; u < u1; u++ {
		if u == ph-1 {
			fill(dst[ph*rowLen:], za) // slack after the buffer
		}
		row := dst[u*rowLen : (u+1)*rowLen]
		i := u - q.PadH
		if i < 0 || i >= q.H {
			fill(row, za)
			continue
		}
		fill(row[:q.PadW*cp], za)
		fill(row[(q.PadW+q.W)*cp:], za)
		px := row[q.PadW*cp : (q.PadW+q.W)*cp]
		src := x[i*q.W:]
		switch {
		case useTranspose() && cp == q.C && q.C >= 16 && q.W >= 16:
			// 16×16 blocks; the last pixel block, and the last channel
			// block when C is not a multiple of 16, overlap the one
			// before (rewriting the same bytes) so no scalar tail is
			// needed.
			for c := 0; c < q.C; c += 16 {
				c := min(c, q.C-16)
				for j := 0; j < q.W; j += 16 {
					j = min(j, q.W-16)
					transposeBlock(&src[c*hw+j], hw, &px[j*cp+c], cp)
				}
			}
		case useTranspose() && q.C > 16 && q.W >= 16:
			// 16×16 blocks for the first channels (the last pixel block
			// overlapping the one before), one byte at a time for the
			// rest, then the channel padding.
			c16 := q.C - q.C%16
			for c := 0; c < c16; c += 16 {
				for j := 0; j < q.W; j += 16 {
					j = min(j, q.W-16)
					transposeBlock(&src[c*hw+j], hw, &px[j*cp+c], cp)
				}
			}
			for j := 0; j < q.W; j++ {
				pix := px[j*cp : (j+1)*cp]
				for c := c16; c < q.C; c++ {
					pix[c] = src[c*hw+j]
				}
				fill(pix[q.C:], za)
			}
		case cp == 4:
			// One to four channels: a pixel is one 32-bit store.
			var p [4][]uint8
			for c := range p {
				if c < q.C {
					p[c] = src[c*hw : c*hw+q.W]
				}
			}
			pad := uint32(za) * 0x01010101
			for j := 0; j < q.W; j++ {
				v := pad
				for c := 0; c < q.C; c++ {
					v = v&^(0xff<<(8*c)) | uint32(p[c][j])<<(8*c)
				}
				binary.LittleEndian.PutUint32(px[j*4:], v)
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

// nhwcToNCHW transposes pixels [p0, p1) of src ([m pixels][c channels],
// pixels ld >= c bytes apart) into dst ([c][m]), writing only dst[ch*m+p]
// for p in [p0, p1), in blocks that stay in cache.
func nhwcToNCHW(src []uint8, ld, m, c int, dst []uint8, p0, p1 int) {
	c16 := 0 // channels moved by 16x16 block transposes
	if useTranspose() && c >= 16 && p1-p0 >= 16 {
		c16 = c - c%16
		// The last block overlaps the one before it inside [p0, p1).
		for p := p0; p < p1; p += 16 {
			p = min(p, p1-16)
			for ch := 0; ch < c16; ch += 16 {
				transposeBlock(&src[p*ld+ch], ld, &dst[ch*m+p], m)
			}
		}
		if c16 == c {
			return
		}
	}
	const bs = 32
	for b0 := p0; b0 < p1; b0 += bs {
		b1 := min(b0+bs, p1)
		for c0 := c16; c0 < c; c0 += bs {
			c1 := min(c0+bs, c)
			for ch := c0; ch < c1; ch++ {
				d := dst[ch*m : ch*m+m]
				for p := b0; p < b1; p++ {
					d[p] = src[p*ld+ch]
				}
			}
		}
	}
}

// useTranspose reports whether the assembly block transpose may run.
func useTranspose() bool { return transposeBlock != nil && cpu.Max >= cpu.AVX512 }
