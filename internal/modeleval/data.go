package modeleval

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/tensor"
)

// Model names one of the four real models.
type Model int

// The real models.
const (
	// Det is the PP-OCRv4 text detector: input "x" [1,3,H,W], a text
	// probability map out.
	Det Model = iota
	// Rec is the PP-OCRv4 text recognizer: input "x" [1,3,48,320],
	// per-step class probabilities out.
	Rec
	// Cls is the PP-OCR text direction classifier: input "x" [1,3,48,192],
	// the probabilities of upright and rotated by 180 degrees out.
	Cls
	// Silero is Silero VAD v5: a 512-sample chunk of 16 kHz audio and the
	// recurrent state in, the speech probability and the next state out.
	Silero
)

// Models lists the real models in a fixed order.
var Models = []Model{Det, Rec, Cls, Silero}

// String returns the model's short name ("ppocr_det", "ppocr_rec",
// "ppocr_cls", "silero").
func (m Model) String() string {
	switch m {
	case Det:
		return "ppocr_det"
	case Rec:
		return "ppocr_rec"
	case Cls:
		return "ppocr_cls"
	case Silero:
		return "silero"
	}
	return fmt.Sprintf("Model(%d)", int(m))
}

// File returns the model's ONNX file relative to the models folder.
func (m Model) File() string {
	switch m {
	case Det:
		return filepath.Join("ppocr", "ch_PP-OCRv4_det_infer.onnx")
	case Rec:
		return filepath.Join("ppocr", "ch_PP-OCRv4_rec_infer.onnx")
	case Cls:
		return filepath.Join("ppocr", "ch_ppocr_mobile_v2.0_cls_infer.onnx")
	case Silero:
		return filepath.Join("silero", "silero_vad_v5.onnx")
	}
	return ""
}

// DictFile is PaddleOCR's recognizer dictionary relative to the models
// folder.
var DictFile = filepath.Join("ppocr", "ppocr_keys_v1.txt")

// Sizes of the calibration sets and of the model inputs.
const (
	// RecCalib is the number of recognizer lines (the first ones) that
	// form its calibration set; the rest are its evaluation set.
	RecCalib = 64
	// DetCalib is the number of detector pages (the first ones) that form
	// its calibration set.
	DetCalib = 16
	// ClsCalibLines is the number of recognizer lines (the first ones)
	// whose upright and rotated crops form the classifier's calibration
	// set (2*ClsCalibLines feeds); its evaluation set is made of the
	// recognizer's evaluation lines, so the two sets are disjoint.
	ClsCalibLines = 32
	// RecHeight and RecWidth are the recognizer's input height and width
	// (PaddleOCR's rec_image_shape 3,48,320).
	RecHeight, RecWidth = 48, 320
	// ClsWidth is the classifier's input width (cls_image_shape 3,48,192).
	ClsWidth = 192
	// ChunkSize is Silero VAD's chunk at 16 kHz.
	ChunkSize = 512
	// SampleRate is the audio's sampling rate.
	SampleRate = 16000
)

// Lines are rendered text lines, as the recognizer's resize leaves them:
// height 48 at the line's aspect ratio, left-aligned in a 320-pixel-wide
// canvas.
type Lines struct {
	// Images holds the lines as uint8 RGB, [N,48,320,3]; columns from
	// Widths[i] on are zero (padding).
	Images *tensor.Tensor
	// Widths holds each line's width in pixels (1..320).
	Widths []int
	// Labels holds each line's text.
	Labels []string
}

// Len returns the number of lines.
func (l *Lines) Len() int { return len(l.Widths) }

// Image returns line i's pixels, [48*320*3] uint8 RGB (a view).
func (l *Lines) Image(i int) []uint8 {
	n := RecHeight * RecWidth * 3
	return l.Images.U8()[i*n : (i+1)*n]
}

// Audio holds 16 kHz clips as float32 samples in [-1, 1) (int16 / 32768);
// every clip's length is a multiple of ChunkSize.
type Audio struct {
	// Calib holds the calibration clips, Eval the evaluation clips.
	Calib, Eval [][]float32
}

// Data is the evaluation data of testdata: the recognizer's lines (also
// the source of the classifier's crops), the detector's pages and Silero's
// audio.
type Data struct {
	// Rec holds the text lines.
	Rec Lines
	// Det holds the pages, uint8 RGB [N,H,W,3].
	Det *tensor.Tensor
	// Silero holds the audio.
	Silero Audio
}

// Load reads the data of dir (internal/modeleval/testdata): rec.npz,
// rec_labels.txt, det.npz and silero.npz. Errors name the file and what is
// wrong with it.
func Load(dir string) (*Data, error) {
	d := &Data{}
	rec, err := readArrays(dir, "rec.npz", map[string]tensor.DType{"images": tensor.Uint8, "widths": tensor.Int64})
	if err != nil {
		return nil, err
	}
	imgs := rec["images"]
	if s := imgs.Shape(); len(s) != 4 || s[1] != RecHeight || s[2] != RecWidth || s[3] != 3 {
		return nil, fmt.Errorf("modeleval: %s: images has shape %v, want [N,%d,%d,3]", filepath.Join(dir, "rec.npz"), s, RecHeight, RecWidth)
	}
	n := imgs.Dim(0)
	widths := rec["widths"].I64()
	if len(widths) != n {
		return nil, fmt.Errorf("modeleval: %s: %d widths for %d images", filepath.Join(dir, "rec.npz"), len(widths), n)
	}
	d.Rec.Images = imgs
	for i, w := range widths {
		if w < 1 || w > RecWidth {
			return nil, fmt.Errorf("modeleval: %s: width %d of line %d is outside 1..%d", filepath.Join(dir, "rec.npz"), w, i, RecWidth)
		}
		d.Rec.Widths = append(d.Rec.Widths, int(w))
	}
	if d.Rec.Labels, err = readLines(filepath.Join(dir, "rec_labels.txt")); err != nil {
		return nil, err
	}
	if len(d.Rec.Labels) != n {
		return nil, fmt.Errorf("modeleval: %s: %d labels for %d lines", filepath.Join(dir, "rec_labels.txt"), len(d.Rec.Labels), n)
	}
	if n <= RecCalib || RecCalib < ClsCalibLines {
		return nil, fmt.Errorf("modeleval: %s: %d lines, want more than the %d of the calibration set", filepath.Join(dir, "rec.npz"), n, RecCalib)
	}

	det, err := readArrays(dir, "det.npz", map[string]tensor.DType{"images": tensor.Uint8})
	if err != nil {
		return nil, err
	}
	d.Det = det["images"]
	if s := d.Det.Shape(); len(s) != 4 || s[0] <= DetCalib || s[1]%32 != 0 || s[2]%32 != 0 || s[3] != 3 {
		return nil, fmt.Errorf("modeleval: %s: images has shape %v, want [N>%d,H,W,3] with H and W multiples of 32", filepath.Join(dir, "det.npz"), s, DetCalib)
	}

	sil, err := readArrays(dir, "silero.npz", map[string]tensor.DType{"calib": tensor.Int32, "eval": tensor.Int32})
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"calib", "eval"} {
		t := sil[k]
		if t.NDim() != 2 || t.Dim(1)%ChunkSize != 0 || t.Dim(1) == 0 {
			return nil, fmt.Errorf("modeleval: %s: %s has shape %v, want [clips, a multiple of %d]", filepath.Join(dir, "silero.npz"), k, t.Shape(), ChunkSize)
		}
		clips := make([][]float32, t.Dim(0))
		l := t.Dim(1)
		v := t.I32()
		for c := range clips {
			clips[c] = make([]float32, l)
			for i, s := range v[c*l : (c+1)*l] {
				clips[c][i] = float32(s) / 32768
			}
		}
		if k == "calib" {
			d.Silero.Calib = clips
		} else {
			d.Silero.Eval = clips
		}
	}
	return d, nil
}

// readArrays reads dir/name and checks that it holds the given arrays with
// the given dtypes (int16 arrays read as Int32).
func readArrays(dir, name string, want map[string]tensor.DType) (map[string]*tensor.Tensor, error) {
	path := filepath.Join(dir, name)
	ts, _, err := npy.ReadNPZ(path)
	if err != nil {
		return nil, fmt.Errorf("modeleval: %w", err)
	}
	for k, dt := range want {
		t, ok := ts[k]
		if !ok {
			return nil, fmt.Errorf("modeleval: %s: no array %q", path, k)
		}
		if t.DType() != dt {
			return nil, fmt.Errorf("modeleval: %s: %s is %v, want %v", path, k, t.DType(), dt)
		}
	}
	return ts, nil
}

// readLines reads a UTF-8 text file's lines (without line ends).
func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("modeleval: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, strings.TrimSuffix(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modeleval: %s: %w", path, err)
	}
	return lines, nil
}

// ErrNoModels is returned by ModelsDir when the shared models folder is
// absent.
var ErrNoModels = errors.New("modeleval: the shared models folder is absent")

// ModelsDir returns the models folder of the shared material that sits
// beside the repository (../shared/models from the module root), found by
// walking up from dir to go.mod. When the folder does not exist it returns
// the path it looked for and an error wrapping ErrNoModels.
func ModelsDir(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("modeleval: no go.mod above %s", dir)
		}
		dir = parent
	}
	models := filepath.Join(filepath.Dir(dir), "shared", "models")
	if _, err := os.Stat(models); errors.Is(err, os.ErrNotExist) {
		return models, fmt.Errorf("%w: %s", ErrNoModels, models)
	} else if err != nil {
		return models, fmt.Errorf("modeleval: %w", err)
	}
	return models, nil
}
