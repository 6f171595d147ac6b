package modeleval

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/tensor"
)

// PaddleOCR's detector normalization (NormalizeImage with the ImageNet
// mean and std, applied to the BGR channels in this order, as PaddleOCR
// does) and its scale, float32(1/255).
var (
	detMean  = [3]float32{0.485, 0.456, 0.406}
	detStd   = [3]float32{0.229, 0.224, 0.225}
	detScale = float32(1.0 / 255.0)
)

// DetInput turns an RGB page (uint8, [h,w,3] row-major) into the
// detector's input [1,3,h,w]: the channels in BGR order (PaddleOCR reads
// images with OpenCV) and each value (float32(x)*float32(1/255) - mean[c])
// / std[c] in float32, PaddleOCR's NormalizeImage.
func DetInput(img []uint8, h, w int) (*tensor.Tensor, error) {
	if len(img) != h*w*3 {
		return nil, fmt.Errorf("modeleval: DetInput: %d bytes for a %dx%d RGB image", len(img), h, w)
	}
	out := make([]float32, 3*h*w)
	for c := 0; c < 3; c++ {
		src := 2 - c // BGR channel c is RGB channel 2-c
		dst := out[c*h*w : (c+1)*h*w]
		for i := range dst {
			dst[i] = (float32(img[i*3+src])*detScale - detMean[c]) / detStd[c]
		}
	}
	return tensor.FromFloat32(out, 1, 3, h, w), nil
}

// normRec is PaddleOCR's recognizer and classifier normalization of one
// value: x/255, then -= 0.5, then /= 0.5, each in float32.
func normRec(x uint8) float32 {
	v := float32(x) / 255
	v -= 0.5
	return v / 0.5
}

// lineInput turns the first width columns of an RGB line of height
// RecHeight stored with row stride stride pixels into a [1,3,48,W] input:
// BGR, normRec, columns from width on 0 (PaddleOCR pads the normalized
// image with zeros).
func lineInput(img []uint8, stride, width, W int) *tensor.Tensor {
	const h = RecHeight
	out := make([]float32, 3*h*W)
	for c := 0; c < 3; c++ {
		src := 2 - c
		for y := 0; y < h; y++ {
			row := out[(c*h+y)*W : (c*h+y+1)*W]
			for x := 0; x < width; x++ {
				row[x] = normRec(img[(y*stride+x)*3+src])
			}
		}
	}
	return tensor.FromFloat32(out, 1, 3, h, W)
}

// RecInput turns a line as Lines stores it (uint8 RGB [48,320,3], the
// text in the first width columns) into the recognizer's input
// [1,3,48,320], as PaddleOCR's resize_norm_img does after its resize.
func RecInput(line []uint8, width int) (*tensor.Tensor, error) {
	if len(line) != RecHeight*RecWidth*3 || width < 1 || width > RecWidth {
		return nil, fmt.Errorf("modeleval: RecInput: %d bytes of width %d, want a %dx%dx3 line of width 1..%d", len(line), width, RecHeight, RecWidth, RecWidth)
	}
	return lineInput(line, RecWidth, width, RecWidth), nil
}

// ClsInput turns a line (as for RecInput) into the direction classifier's
// input [1,3,48,192], rotated by 180 degrees first when rotate is set:
// PaddleOCR's resize_norm_img for cls_image_shape 3,48,192 resizes the
// 48-pixel-high crop to width min(192, ceil(48*width/48)) (see
// ResizeWidth), normalizes and pads with zeros.
func ClsInput(line []uint8, width int, rotate bool) (*tensor.Tensor, error) {
	if len(line) != RecHeight*RecWidth*3 || width < 1 || width > RecWidth {
		return nil, fmt.Errorf("modeleval: ClsInput: %d bytes of width %d, want a %dx%dx3 line of width 1..%d", len(line), width, RecHeight, RecWidth, RecWidth)
	}
	crop := make([]uint8, RecHeight*width*3)
	for y := 0; y < RecHeight; y++ {
		for x := 0; x < width; x++ {
			sy, sx := y, x
			if rotate {
				sy, sx = RecHeight-1-y, width-1-x
			}
			copy(crop[(y*width+x)*3:(y*width+x)*3+3], line[(sy*RecWidth+sx)*3:(sy*RecWidth+sx)*3+3])
		}
	}
	rw := min(ClsWidth, int(math.Ceil(float64(RecHeight)*float64(width)/float64(RecHeight))))
	if rw != width {
		crop = ResizeWidth(crop, RecHeight, width, rw)
	}
	return lineInput(crop, rw, rw, ClsWidth), nil
}

// ResizeWidth resizes an RGB image [h,w,3] to [h,nw,3] with OpenCV's
// INTER_LINEAR geometry (source x = (x+0.5)*w/nw - 0.5, clamped to the
// border), rounding each value to the nearest integer. OpenCV computes the
// weights in 11-bit fixed point, so its values may differ from these by
// one level.
func ResizeWidth(img []uint8, h, w, nw int) []uint8 {
	out := make([]uint8, h*nw*3)
	scale := float64(w) / float64(nw)
	for x := 0; x < nw; x++ {
		sx := (float64(x)+0.5)*scale - 0.5
		x0 := int(math.Floor(sx))
		f := sx - float64(x0)
		if x0 < 0 {
			x0, f = 0, 0
		}
		if x0 >= w-1 {
			x0, f = w-1, 0
		}
		x1 := min(x0+1, w-1)
		for y := 0; y < h; y++ {
			for c := 0; c < 3; c++ {
				a, b := float64(img[(y*w+x0)*3+c]), float64(img[(y*w+x1)*3+c])
				out[(y*nw+x)*3+c] = uint8(math.Round((1-f)*a + f*b))
			}
		}
	}
	return out
}

// sileroFeed returns Silero's feed for one chunk with the given state.
func sileroFeed(chunk []float32, state *tensor.Tensor) map[string]*tensor.Tensor {
	sr := tensor.New(tensor.Int64)
	sr.I64()[0] = SampleRate
	return map[string]*tensor.Tensor{
		"input": tensor.FromFloat32(append([]float32(nil), chunk...), 1, len(chunk)),
		"state": state,
		"sr":    sr,
	}
}

// sileroZeroState is Silero's initial state [2,1,128].
func sileroZeroState() *tensor.Tensor { return tensor.Zeros(2, 1, 128) }

// sample is one image feed with its ground truth.
type sample struct {
	feed  map[string]*tensor.Tensor
	text  string // Rec: the line's string
	class int    // Cls: 0 upright, 1 rotated by 180 degrees
}

// imageSamples returns the calibration (calib) or evaluation samples of an
// image model.
func (d *Data) imageSamples(m Model, calib bool) ([]sample, error) {
	var out []sample
	switch m {
	case Rec:
		lo, hi := RecCalib, d.Rec.Len()
		if calib {
			lo, hi = 0, RecCalib
		}
		for i := lo; i < hi; i++ {
			x, err := RecInput(d.Rec.Image(i), d.Rec.Widths[i])
			if err != nil {
				return nil, err
			}
			out = append(out, sample{feed: map[string]*tensor.Tensor{"x": x}, text: d.Rec.Labels[i]})
		}
	case Cls:
		lo, hi := RecCalib, d.Rec.Len()
		if calib {
			lo, hi = 0, ClsCalibLines
		}
		for i := lo; i < hi; i++ {
			for class := 0; class < 2; class++ {
				x, err := ClsInput(d.Rec.Image(i), d.Rec.Widths[i], class == 1)
				if err != nil {
					return nil, err
				}
				out = append(out, sample{feed: map[string]*tensor.Tensor{"x": x}, class: class})
			}
		}
	case Det:
		n, h, w := d.Det.Dim(0), d.Det.Dim(1), d.Det.Dim(2)
		lo, hi := DetCalib, n
		if calib {
			lo, hi = 0, DetCalib
		}
		for i := lo; i < hi; i++ {
			x, err := DetInput(d.Det.U8()[i*h*w*3:(i+1)*h*w*3], h, w)
			if err != nil {
				return nil, err
			}
			out = append(out, sample{feed: map[string]*tensor.Tensor{"x": x}})
		}
	default:
		return nil, fmt.Errorf("modeleval: %v is not an image model", m)
	}
	return out, nil
}
