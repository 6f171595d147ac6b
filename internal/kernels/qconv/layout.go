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
			toPixels4(px[:4*q.W], src, hw, q.W, q.C, za)
		case cp == 8 && q.C == 8:
			// Eight channels: 8x8 byte transposes of 8 pixels.
			j := 0
			var a [8]uint64
			for ; j+8 <= q.W; j += 8 {
				for c := range a {
					a[c] = binary.LittleEndian.Uint64(src[c*hw+j:])
				}
				transpose8x8(&a)
				for k, v := range a {
					binary.LittleEndian.PutUint64(px[(j+k)*8:], v)
				}
			}
			for ; j < q.W; j++ {
				for c := 0; c < 8; c++ {
					px[j*8+c] = src[c*hw+j]
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

// toPixels4 writes w pixels of c <= 4 channels (channel k of pixel j at
// src[k*hw+j]) as 4-byte pixels into dst, channels past c holding za.
func toPixels4(dst, src []uint8, hw, w, c int, za uint8) {
	pad := uint32(za) * 0x01010101
	dst = dst[:4*w]
	switch c {
	case 1:
		p0 := src[:w]
		for j, v := range p0 {
			binary.LittleEndian.PutUint32(dst[4*j:4*j+4], pad&^0xff|uint32(v))
		}
	case 2:
		p0, p1 := src[:w], src[hw:hw+w]
		p1 = p1[:len(p0)]
		for j, v := range p0 {
			binary.LittleEndian.PutUint32(dst[4*j:4*j+4], pad&^0xffff|uint32(v)|uint32(p1[j])<<8)
		}
	case 3:
		p0, p1, p2 := src[:w], src[hw:hw+w], src[2*hw:2*hw+w]
		p1, p2 = p1[:len(p0)], p2[:len(p0)]
		hi := pad &^ 0xffffff
		// 16 pixels at a time in vector code, then two pixels per 64-bit
		// store.
		j := 0
		if n := w &^ 15; n > 0 && pixelRows3 != nil && useTranspose() {
			pixelRows3(&src[0], hw, n, &dst[0], za)
			j = n
		}
		for ; j+2 <= len(p0); j += 2 {
			a := hi | uint32(p0[j]) | uint32(p1[j])<<8 | uint32(p2[j])<<16
			b := hi | uint32(p0[j+1]) | uint32(p1[j+1])<<8 | uint32(p2[j+1])<<16
			binary.LittleEndian.PutUint64(dst[4*j:4*j+8], uint64(a)|uint64(b)<<32)
		}
		for ; j < len(p0); j++ {
			binary.LittleEndian.PutUint32(dst[4*j:4*j+4], hi|uint32(p0[j])|uint32(p1[j])<<8|uint32(p2[j])<<16)
		}
	default:
		p0, p1, p2, p3 := src[:w], src[hw:hw+w], src[2*hw:2*hw+w], src[3*hw:3*hw+w]
		p1, p2, p3 = p1[:len(p0)], p2[:len(p0)], p3[:len(p0)]
		j := 0
		if n := w &^ 15; n > 0 && pixelRows4 != nil && useTranspose() {
			pixelRows4(&src[0], hw, n, &dst[0])
			j = n
		}
		for ; j < len(p0); j++ {
			binary.LittleEndian.PutUint32(dst[4*j:4*j+4], uint32(p0[j])|uint32(p1[j])<<8|uint32(p2[j])<<16|uint32(p3[j])<<24)
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
	if useTranspose() && c >= 16 && p1-p0 >= 16 {
		// 16x16 blocks; the last pixel block, and the last channel block
		// when c is not a multiple of 16, overlap the one before
		// (rewriting the same bytes) inside [p0, p1).
		for p := p0; p < p1; p += 16 {
			p = min(p, p1-16)
			for ch := 0; ch < c; ch += 16 {
				ch := min(ch, c-16)
				transposeBlock(&src[p*ld+ch], ld, &dst[ch*m+p], m)
			}
		}
		return
	}
	c8, q := 0, p0 // channels [0, c8) of pixels [p0, q) move as 8x8 blocks
	if c >= 8 && c < 16 {
		c8 = 8
		var a [8]uint64
		for ; q+8 <= p1; q += 8 {
			for i := range a {
				a[i] = binary.LittleEndian.Uint64(src[(q+i)*ld:])
			}
			transpose8x8(&a)
			for k, v := range a {
				binary.LittleEndian.PutUint64(dst[k*m+q:], v)
			}
		}
	}
	const bs = 32
	for b0 := p0; b0 < p1; b0 += bs {
		b1 := min(b0+bs, p1)
		for c0 := 0; c0 < c; c0 += bs {
			c1 := min(c0+bs, c)
			for ch := c0; ch < c1; ch++ {
				d := dst[ch*m : ch*m+m]
				lo := b0
				if ch < c8 {
					lo = max(lo, q)
				}
				for p := lo; p < b1; p++ {
					d[p] = src[p*ld+ch]
				}
			}
		}
	}
}

// transpose8x8 transposes the 8x8 byte matrix whose row r is a[r] (byte
// k at bits 8k): afterwards byte r of a[k] is the old byte k of a[r].
func transpose8x8(a *[8]uint64) {
	const m32, m16, m8 = 0x00000000FFFFFFFF, 0x0000FFFF0000FFFF, 0x00FF00FF00FF00FF
	a0, a1, a2, a3, a4, a5, a6, a7 := a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
	// Swap the 4x4 blocks off the diagonal, then the 2x2 blocks, then
	// single bytes.
	t := (a0>>32 ^ a4) & m32
	a0, a4 = a0^t<<32, a4^t
	t = (a1>>32 ^ a5) & m32
	a1, a5 = a1^t<<32, a5^t
	t = (a2>>32 ^ a6) & m32
	a2, a6 = a2^t<<32, a6^t
	t = (a3>>32 ^ a7) & m32
	a3, a7 = a3^t<<32, a7^t
	t = (a0>>16 ^ a2) & m16
	a0, a2 = a0^t<<16, a2^t
	t = (a1>>16 ^ a3) & m16
	a1, a3 = a1^t<<16, a3^t
	t = (a4>>16 ^ a6) & m16
	a4, a6 = a4^t<<16, a6^t
	t = (a5>>16 ^ a7) & m16
	a5, a7 = a5^t<<16, a7^t
	t = (a0>>8 ^ a1) & m8
	a0, a1 = a0^t<<8, a1^t
	t = (a2>>8 ^ a3) & m8
	a2, a3 = a2^t<<8, a3^t
	t = (a4>>8 ^ a5) & m8
	a4, a5 = a4^t<<8, a5^t
	t = (a6>>8 ^ a7) & m8
	a6, a7 = a6^t<<8, a7^t
	a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7] = a0, a1, a2, a3, a4, a5, a6, a7
}

// useTranspose reports whether the assembly block transpose may run.
func useTranspose() bool { return transposeBlock != nil && cpu.Max >= cpu.AVX512 }
