package exec_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// The real models' outputs must match ONNX Runtime's within this relative
// L2 error, ||quanta - ort|| / ||ort||, over each whole output.
const modelTol = 1e-4

// sharedModels returns the models folder of the shared material that sits
// beside the repository (../shared/models from the module root), found by
// walking up from the package directory to go.mod.
func sharedModels(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
	models := filepath.Join(filepath.Dir(dir), "shared", "models")
	if _, err := os.Stat(models); errors.Is(err, os.ErrNotExist) {
		t.Skipf("the real-model test needs the folder %s (shared/models beside the repository); it is absent", models)
	} else if err != nil {
		t.Fatal(err)
	}
	return models
}

// relL2 returns ||a-b|| / ||b|| in float64.
func relL2(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// readNPZ reads a testdata .npz of the real-model test.
func readNPZ(t *testing.T, name string) map[string]*tensor.Tensor {
	t.Helper()
	ts, _, err := npy.ReadNPZ(filepath.Join("testdata", "models", name))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// compileModel loads and compiles one of the shared models.
func compileModel(t *testing.T, path string) *exec.Program {
	t.Helper()
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := exec.Compile(m, exec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// compareOutput checks one output's shape and relative L2 error against
// ONNX Runtime's and logs the error.
func compareOutput(t *testing.T, name string, got, want *tensor.Tensor) bool {
	t.Helper()
	if fmt.Sprint(got.Shape()) != fmt.Sprint(want.Shape()) {
		t.Errorf("%s: shape %v, ONNX Runtime %v", name, got.Shape(), want.Shape())
		return false
	}
	e := relL2(got.F32(), want.F32())
	t.Logf("%s %v: relative L2 error vs ONNX Runtime %.3g", name, got.Shape(), e)
	if !(e <= modelTol) {
		t.Errorf("%s: relative L2 error %.3g > %g", name, e, modelTol)
		return false
	}
	return true
}

// argmaxRows returns the index of the largest value of each row of length n.
func argmaxRows(v []float32, n int) []int {
	out := make([]int, len(v)/n)
	for r := range out {
		row := v[r*n : (r+1)*n]
		best := 0
		for i, x := range row {
			if x > row[best] {
				best = i
			}
		}
		out[r] = best
	}
	return out
}

// ctcGreedy collapses repeats and drops the blank (class 0) of a best path.
func ctcGreedy(path []int) []int {
	var out []int
	prev := -1
	for _, c := range path {
		if c != prev && c != 0 {
			out = append(out, c)
		}
		prev = c
	}
	return out
}

// ocrText spells recognizer classes with PaddleOCR's dictionary: class 0
// is the CTC blank, classes 1..n the file's lines, n+1 a space.
func ocrText(t *testing.T, keysPath string, classes []int) string {
	t.Helper()
	f, err := os.Open(keysPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := []string{""}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		keys = append(keys, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, " ")
	var b strings.Builder
	for _, c := range classes {
		if c < len(keys) {
			b.WriteString(keys[c])
		} else {
			fmt.Fprintf(&b, "<%d>", c)
		}
	}
	return b.String()
}

// TestRealModels runs the PP-OCRv4 text detector and recognizer, the
// PP-OCR direction classifier and Silero VAD v5 from the shared model
// folder on the inputs of testdata/models (written by
// scripts/ort/make_model_inputs.py) and compares every output with ONNX
// Runtime 1.30's (written by scripts/ort/run_reference.js): relative L2
// error at most 1e-4 over each whole output, plus the decision each model
// exists for: the detector's binary text map at threshold 0.3 on more than
// 99.9% of pixels, the recognizer's greedy CTC decoding, the classifier's
// class, and Silero's speech probability chunk by chunk with the state
// carried over.
func TestRealModels(t *testing.T) {
	models := sharedModels(t)
	ctx := context.Background()

	t.Run("ppocr_det", func(t *testing.T) {
		p := compileModel(t, filepath.Join(models, "ppocr", "ch_PP-OCRv4_det_infer.onnx"))
		in := readNPZ(t, "ppocr_det_inputs.npz")
		ref := readNPZ(t, "ppocr_det_ort.npz")
		res, err := p.Run(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		const name = "sigmoid_0.tmp_0"
		got, want := res[name], ref[name]
		if !compareOutput(t, name, got, want) {
			return
		}
		g, w := got.F32(), want.F32()
		same, text := 0, 0
		for i := range w {
			if (g[i] > 0.3) == (w[i] > 0.3) {
				same++
			}
			if w[i] > 0.3 {
				text++
			}
		}
		frac := float64(same) / float64(len(w))
		t.Logf("binary map at 0.3: %d of %d pixels agree (%.4f%%); ONNX Runtime marks %d as text", same, len(w), 100*frac, text)
		if frac <= 0.999 {
			t.Errorf("binary map at 0.3 agrees on %.4f%% of pixels, want > 99.9%%", 100*frac)
		}
		if text == 0 {
			t.Error("ONNX Runtime's map marks no text: the reference is not a real page")
		}
	})

	t.Run("ppocr_rec", func(t *testing.T) {
		p := compileModel(t, filepath.Join(models, "ppocr", "ch_PP-OCRv4_rec_infer.onnx"))
		in := readNPZ(t, "ppocr_rec_inputs.npz")
		ref := readNPZ(t, "ppocr_rec_ort.npz")
		res, err := p.Run(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		const name = "softmax_11.tmp_0"
		got, want := res[name], ref[name]
		if !compareOutput(t, name, got, want) {
			return
		}
		n := want.Dim(-1)
		gp, wp := ctcGreedy(argmaxRows(got.F32(), n)), ctcGreedy(argmaxRows(want.F32(), n))
		keys := filepath.Join(models, "ppocr", "ppocr_keys_v1.txt")
		gs, ws := ocrText(t, keys, gp), ocrText(t, keys, wp)
		t.Logf("greedy CTC decoding: quanta %q, ONNX Runtime %q", gs, ws)
		if fmt.Sprint(gp) != fmt.Sprint(wp) {
			t.Errorf("greedy CTC decoding %v (%q), ONNX Runtime %v (%q)", gp, gs, wp, ws)
		}
		if len(wp) == 0 {
			t.Error("ONNX Runtime decodes no text: the reference is not a text line")
		}
	})

	t.Run("ppocr_cls", func(t *testing.T) {
		p := compileModel(t, filepath.Join(models, "ppocr", "ch_ppocr_mobile_v2.0_cls_infer.onnx"))
		in := readNPZ(t, "ppocr_cls_inputs.npz")
		ref := readNPZ(t, "ppocr_cls_ort.npz")
		res, err := p.Run(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		const name = "softmax_0.tmp_0"
		got, want := res[name], ref[name]
		if !compareOutput(t, name, got, want) {
			return
		}
		gc, wc := argmaxRows(got.F32(), 2), argmaxRows(want.F32(), 2)
		t.Logf("classes (0: upright, 1: rotated 180): quanta %v, ONNX Runtime %v", gc, wc)
		if fmt.Sprint(gc) != fmt.Sprint(wc) {
			t.Errorf("classes %v, ONNX Runtime %v", gc, wc)
		}
	})

	t.Run("silero", func(t *testing.T) {
		p := compileModel(t, filepath.Join(models, "silero", "silero_vad_v5.onnx"))
		in := readNPZ(t, "silero_inputs.npz")
		ref := readNPZ(t, "silero_ort.npz")
		chunks := in["chunks"]
		n, size := chunks.Dim(0), chunks.Dim(1)
		state, sr := in["state"], in["sr"]
		probs := make([]float32, n)
		for i := 0; i < n; i++ {
			chunk := tensor.FromFloat32(append([]float32(nil), chunks.F32()[i*size:(i+1)*size]...), 1, size)
			res, err := p.Run(ctx, map[string]*tensor.Tensor{"input": chunk, "state": state, "sr": sr})
			if err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
			if out := res["output"]; out.Numel() != 1 {
				t.Fatalf("chunk %d: output has shape %v, want one value", i, out.Shape())
			}
			probs[i] = res["output"].F32()[0]
			state = res["stateN"]
		}
		want := ref["output"].F32()
		worst := 0.0
		for i := range want {
			e := math.Abs(float64(probs[i])-float64(want[i])) / math.Abs(float64(want[i]))
			worst = math.Max(worst, e)
			if !(e <= modelTol) {
				t.Errorf("chunk %d: speech probability %.7g, ONNX Runtime %.7g (relative error %.3g)", i, probs[i], want[i], e)
			}
		}
		t.Logf("speech probability of %d chunks: largest relative error per chunk %.3g", n, worst)
		compareOutput(t, "output (every chunk)", tensor.FromFloat32(probs, n, 1), ref["output"])
		compareOutput(t, "stateN (after the last chunk)", state, ref["stateN"])
	})
}
