package demo

import "github.com/quanta-go/quanta/tensor"

// shiftImages returns a copy of the image batch x [N, C, H, W] in which
// each image is translated by its own random offset of up to max pixels in
// each direction (torchvision's RandomAffine(0, translate) with integer
// steps); pixels shifted in take the value fill.
func shiftImages(x *tensor.Tensor, rng *tensor.RNG, limit int, fill float32) *tensor.Tensor {
	n, c, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	out := tensor.Full(fill, n, c, h, w)
	src, dst := x.F32(), out.F32()
	for i := 0; i < n; i++ {
		dy := rng.IntN(2*limit+1) - limit
		dx := rng.IntN(2*limit+1) - limit
		for ch := 0; ch < c; ch++ {
			plane := (i*c + ch) * h * w
			for y := max(0, dy); y < min(h, h+dy); y++ {
				sy := y - dy
				x0, x1 := max(0, dx), min(w, w+dx)
				copy(dst[plane+y*w+x0:plane+y*w+x1], src[plane+sy*w+x0-dx:plane+sy*w+x1-dx])
			}
		}
	}
	return out
}
