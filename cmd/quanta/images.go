package main

import (
	"fmt"
	"image"
	_ "image/jpeg" // JPEG calibration images
	_ "image/png"  // PNG calibration images
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// imageFeeds reads the PNG and JPEG files of o.calib (sorted by name) as
// feeds of the model's one float input [1,3,H,W]: resized bilinearly to
// --resize (default: the input's declared H and W), scaled to 0..1 and
// normalized per channel with --mean and --std, in RGB or (--bgr) BGR
// order.
func imageFeeds(m *graph.Model, o quantizeOpts) ([]map[string]*tensor.Tensor, error) {
	var in *graph.Value
	for _, v := range m.Graph.Inputs {
		if v.Const != nil {
			continue
		}
		if in != nil {
			return nil, fmt.Errorf("--calib %s: a folder of images calibrates one-input models; this one has inputs %q and %q (use an .npz)", o.calib, in.Name, v.Name)
		}
		in = v
	}
	if in == nil || in.Type.Elem != graph.Float {
		return nil, fmt.Errorf("--calib %s: the model has no float input for images", o.calib)
	}
	if in.Type.HasShape && len(in.Type.Shape) != 4 {
		return nil, fmt.Errorf("--calib %s: input %q is %s, not an NCHW image batch", o.calib, in.Name, in.Type)
	}
	w, h := 0, 0
	if o.resize != "" {
		var err error
		if w, h, err = parseSize(o.resize); err != nil {
			return nil, usageError{"--resize: " + err.Error()}
		}
	} else if in.Type.HasShape && in.Type.Shape[2].Known() && in.Type.Shape[3].Known() {
		h, w = int(in.Type.Shape[2].Size), int(in.Type.Shape[3].Size)
	} else {
		return nil, usageError{fmt.Sprintf("--resize WxH is needed: input %q has no fixed height and width (%s)", in.Name, in.Type)}
	}
	mean, err := parseTriple(o.mean)
	if err != nil {
		return nil, usageError{"--mean: " + err.Error()}
	}
	std, err := parseTriple(o.std)
	if err != nil {
		return nil, usageError{"--std: " + err.Error()}
	}
	for _, s := range std {
		if s == 0 {
			return nil, usageError{"--std: a zero entry"}
		}
	}
	ents, err := os.ReadDir(o.calib)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".png", ".jpg", ".jpeg":
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("--calib %s: %w", o.calib, errNoImages)
	}
	var feeds []map[string]*tensor.Tensor
	for _, name := range names {
		path := filepath.Join(o.calib, name)
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		img, _, err := image.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		feeds = append(feeds, map[string]*tensor.Tensor{in.Name: imageTensor(img, w, h, mean, std, o.bgr)})
	}
	return feeds, nil
}

// imageTensor resizes img to w×h (bilinear, half-pixel centres) and
// returns [1,3,h,w] float32 of (x/255 - mean[c]) / std[c].
func imageTensor(img image.Image, w, h int, mean, std [3]float32, bgr bool) *tensor.Tensor {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	src := make([]float32, 3*sw*sh)
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := (y*sw + x) * 3
			src[i], src[i+1], src[i+2] = float32(r>>8), float32(g>>8), float32(bl>>8)
		}
	}
	out := make([]float32, 3*w*h)
	for y := 0; y < h; y++ {
		fy := (float32(y)+0.5)*float32(sh)/float32(h) - 0.5
		y0, wy := clampIdx(fy, sh)
		for x := 0; x < w; x++ {
			fx := (float32(x)+0.5)*float32(sw)/float32(w) - 0.5
			x0, wx := clampIdx(fx, sw)
			x1, y1 := min(x0+1, sw-1), min(y0+1, sh-1)
			for c := 0; c < 3; c++ {
				p := func(xx, yy int) float32 { return src[(yy*sw+xx)*3+c] }
				v := (1-wy)*((1-wx)*p(x0, y0)+wx*p(x1, y0)) + wy*((1-wx)*p(x0, y1)+wx*p(x1, y1))
				oc := c
				if bgr {
					oc = 2 - c
				}
				out[(oc*h+y)*w+x] = (v/255 - mean[oc]) / std[oc]
			}
		}
	}
	return tensor.FromFloat32(out, 1, 3, h, w)
}

// clampIdx returns floor(f) clamped to [0, n-1] and the fraction.
func clampIdx(f float32, n int) (int, float32) {
	if f <= 0 {
		return 0, 0
	}
	i := int(f)
	if i >= n-1 {
		return n - 1, 0
	}
	return i, f - float32(i)
}

func parseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want WxH", s)
	}
	w, err1 := strconv.Atoi(a)
	h, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || w < 1 || h < 1 {
		return 0, 0, fmt.Errorf("%q: want positive WxH", s)
	}
	return w, h, nil
}

func parseTriple(s string) ([3]float32, error) {
	var out [3]float32
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return out, fmt.Errorf("%q: want three comma-separated numbers", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return out, fmt.Errorf("%q: %v", s, err)
		}
		out[i] = float32(v)
	}
	return out, nil
}
