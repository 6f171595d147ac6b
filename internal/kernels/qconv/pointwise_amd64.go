//go:build !purego

package qconv

import (
	"encoding/binary"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/parallel"
)

// pwPack holds a pointwise convolution's weights for the NCHW kernels:
// per output channel, cq quadruples of input-channel weights (those past
// C zero), as little-endian int32s.
type pwPack struct {
	cq int
	w  []int32 // [OutC][cq]
}

// packPointwise builds the NCHW pointwise form when it applies: AVX-512
// VNNI, a 1x1 kernel with stride 1 and no padding, one group and
// symmetric weights (zero points 0).
func packPointwise(p *Params, w []int8) *pwPack {
	q := p.Conv2DParams
	if cpu.Hardware < cpu.AVX512VNNI || q.Groups != 1 || q.KH != 1 || q.KW != 1 ||
		q.StrideH != 1 || q.StrideW != 1 || q.PadH != 0 || q.PadW != 0 {
		return nil
	}
	for _, z := range p.WeightZeroPoints {
		if z != 0 {
			return nil
		}
	}
	cq := (q.C + 3) / 4
	pp := &pwPack{cq: cq, w: make([]int32, q.OutC*cq)}
	var quad [4]byte
	for oc := 0; oc < q.OutC; oc++ {
		for g := 0; g < cq; g++ {
			quad = [4]byte{}
			for t := 0; t < 4 && g*4+t < q.C; t++ {
				quad[t] = byte(w[oc*q.C+g*4+t])
			}
			pp.w[oc*cq+g] = int32(binary.LittleEndian.Uint32(quad[:]))
		}
	}
	return pp
}

// pwRows is the most output channels one pointwise kernel call computes
// (pwKernels[1..pwRows]).
const pwRows = 4

// pwMinPixels is the fewest pixels for which the NCHW pointwise kernels
// beat the implicit GEMM (which keeps one-pixel squeeze-excite
// projections).
const pwMinPixels = 16

// usePointwise reports whether convPointwise runs pk.
func usePointwise(pk *Packed) bool {
	return pk.pw != nil && cpu.Max >= cpu.AVX512VNNI && pk.p.H*pk.p.W >= pwMinPixels
}

// convPointwise computes a 1x1 convolution without leaving NCHW: the input
// channels are interleaved by fours ([C/4][pixels][4], the pixels padded
// to whole 64-pixel chunks), then each piece, a run of chunks small enough
// to stay in the L1 cache times a part of the output channels, is
// accumulated 4 output channels at a time with the pixels in the vector
// lanes and requantized straight into the output planes. A last partial
// chunk is computed in whole vectors of 16 pixels into a scratch tile.
// Pieces are fixed sets of outputs, so results do not depend on the
// thread count.
func convPointwise(pk *Packed, x []uint8, r *qgemm.Requant, y []uint8) {
	p := &pk.p
	q := &p.Conv2DParams
	pp := pk.pw
	m := q.H * q.W
	nc := (m + 63) / 64
	gs := nc * 64 * 4
	initB := getI32(q.OutC)
	defer i32Scratch.Put(initB)
	multB := getF32(q.OutC)
	defer f32Scratch.Put(multB)
	init, mult := *initB, *multB
	pk.epilogue(r, init, mult)
	lo, hi := float32(r.Min-r.ZeroPoint), float32(r.Max-r.ZeroPoint)
	ilvB := getBuf(pp.cq * gs)
	defer scratch.Put(ilvB)
	ilv := *ilvB
	t := parallel.NumThreads()
	if m*q.OutC*q.C < 1<<21 {
		t = 1
	}
	full := m / 64     // chunks written in place
	rem := m - full*64 // pixels of the partial chunk
	ob := (q.OutC + pwRows - 1) / pwRows
	// Runs of chunks whose interleaved input fits in 16 KiB; on several
	// threads, output channels split in parts until there are about four
	// pieces per worker.
	cpp := min(nc, max(1, 16384/(pp.cq*256)))
	runs := (nc + cpp - 1) / cpp
	parts := 1
	if t > 1 && runs < 4*t {
		parts = min(ob, (4*t+runs-1)/runs)
	}
	for n := 0; n < q.N; n++ {
		xn := x[n*q.C*m : (n+1)*q.C*m]
		yn := y[n*q.OutC*m : (n+1)*q.OutC*m]
		parallel.Tasks(t, pp.cq, func(g int) {
			interleaveGroup(xn, q.C, m, g, ilv[g*gs:(g+1)*gs])
		})
		parallel.Tasks(t, runs*parts, func(u int) {
			c0 := (u / parts) * cpp
			c1 := min(nc, c0+cpp)
			b0, b1 := (u%parts)*ob/parts, (u%parts+1)*ob/parts
			for b := b0; b < b1; b++ {
				o0 := b * pwRows
				rows := min(pwRows, q.OutC-o0)
				w := &pp.w[o0*pp.cq]
				if f := min(c1, full); f > c0 {
					pwKernels[rows][4](pp.cq, &ilv[c0*256], gs, w, &init[o0], &mult[o0], r.ZeroPoint, lo, hi, &yn[o0*m+c0*64], m, f-c0)
				}
				if c1 == nc && rem > 0 {
					tb := getBuf(pwRows * 64)
					tile := *tb
					pwKernels[rows][(rem+15)/16](pp.cq, &ilv[full*256], gs, w, &init[o0], &mult[o0], r.ZeroPoint, lo, hi, &tile[0], 64, 1)
					for rr := 0; rr < rows; rr++ {
						copy(yn[(o0+rr)*m+full*64:(o0+rr+1)*m], tile[rr*64:])
					}
					scratch.Put(tb)
				}
			}
		})
	}
}

// interleaveGroup writes input channels 4g..4g+3 of the c-channel NCHW
// image x (m pixels a plane) as m byte quadruples into dst, channels past
// c as 0 (their weights are 0); dst's bytes past the m quadruples are left
// as they are. Whole groups go 16 pixels at a time through interleave4,
// the rest through toPixels4.
func interleaveGroup(x []uint8, c, m, g int, dst []uint8) {
	c0 := g * 4
	n16 := 0
	if c0+4 <= c {
		n16 = m &^ 15
	}
	if n16 > 0 {
		interleave4(&x[c0*m], m, n16, &dst[0])
	}
	if n16 < m {
		toPixels4(dst[n16*4:], x[c0*m+n16:], m, m-n16, min(4, c-c0), 0)
	}
}
