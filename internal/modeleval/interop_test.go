package modeleval

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// outDir is where TestWriteQuantized leaves the quantized models and their
// interop inputs for scripts/models/ort_interop.js.
var outDir = flag.String("modeleval.out", "", "TestWriteQuantized writes the quantized models, interop inputs and manifest.json here (default: a temporary folder)")

// manifestEntry describes one quantized model for the ONNX Runtime script
// and, copied into testdata/ort/manifest.json, the reference it wrote.
type manifestEntry struct {
	Name    string   `json:"name"`
	Model   string   `json:"model"`
	Inputs  string   `json:"inputs"`
	SHA256  string   `json:"sha256"`
	Feeds   int      `json:"feeds"`
	Outputs []string `json:"outputs"`
}

// encode returns the ONNX bytes of q and their SHA-256.
func encode(t *testing.T, q *graph.Model) ([]byte, string) {
	t.Helper()
	data, err := onnx.Encode(q)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:])
}

// interopFeeds returns job j's interop feeds.
func interopFeeds(t *testing.T, models string, j job) []map[string]*tensor.Tensor {
	t.Helper()
	var float *exec.Program
	if j.m == Silero {
		float = compile(t, loadModel(t, models, j.m))
	}
	feeds, err := testData(t).InteropFeeds(context.Background(), j.m, float)
	if err != nil {
		t.Fatal(err)
	}
	return feeds
}

// TestWriteQuantized writes every quantized model as ONNX with its interop
// inputs (one .npz of the feeds stacked along a new first axis), each
// model's calibration set (calib_MODEL.npz, for quanta quantize --calib),
// one benchmark feed per model (bench_MODEL.npz, for quanta bench
// --inputs) and a manifest.json, into -modeleval.out or a temporary folder, and checks
// that the written file decodes into a program with bit-identical outputs
// and that quantizing again writes the same bytes (the ONNX Runtime
// references stay valid as long as the quantizer does not change).
//
//	go test ./internal/modeleval -run TestWriteQuantized -args -modeleval.out DIR
func TestWriteQuantized(t *testing.T) {
	models := sharedModels(t)
	dir := *outDir
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var manifest []manifestEntry
	for _, j := range jobs {
		q := quantized(t, models, j)
		data, sum := encode(t, q)
		e := manifestEntry{Name: j.name(), Model: j.name() + ".onnx", Inputs: j.name() + "_inputs.npz", SHA256: sum}
		for _, o := range q.Graph.Outputs {
			e.Outputs = append(e.Outputs, o.Name)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Model), data, 0o644); err != nil {
			t.Fatal(err)
		}
		feeds := interopFeeds(t, models, j)
		e.Feeds = len(feeds)
		stacked, keys, err := StackFeeds(feeds)
		if err != nil {
			t.Fatal(err)
		}
		if err := npy.WriteNPZ(filepath.Join(dir, e.Inputs), stacked, keys); err != nil {
			t.Fatal(err)
		}
		manifest = append(manifest, e)
		// One feed for `quanta bench --inputs`: the first evaluation
		// sample (Silero: the first interop chunk, with its state).
		bench := feeds[0]
		if j.m != Silero {
			samples, err := testData(t).imageSamples(j.m, false)
			if err != nil {
				t.Fatal(err)
			}
			bench = samples[0].feed
		}
		if err := npy.WriteNPZ(filepath.Join(dir, "bench_"+j.m.String()+".npz"), bench, nil); err != nil {
			t.Fatal(err)
		}
		if j.mode == Static {
			// The calibration set, for `quanta quantize --calib`.
			var float *exec.Program
			if j.m == Silero {
				float = compile(t, loadModel(t, models, j.m))
			}
			cal, err := testData(t).CalibrationFeeds(ctx, j.m, float)
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteCalibration(filepath.Join(dir, "calib_"+j.m.String()+".npz"), j.m, cal); err != nil {
				t.Fatal(err)
			}
		}

		back, err := onnx.Decode(data, onnx.DecodeOptions{})
		if err != nil {
			t.Fatalf("%s: decoding the written model: %v", e.Name, err)
		}
		a, err := compile(t, q).Run(ctx, feeds[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := compile(t, back).Run(ctx, feeds[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range e.Outputs {
			if !slices.Equal(a[name].F32(), b[name].F32()) {
				t.Errorf("%s: output %q of the written model differs from the quantized model's", e.Name, name)
			}
		}
		t.Logf("%s: %d bytes, sha256 %s, %d interop feeds", e.Model, len(data), sum[:16], e.Feeds)
	}
	js, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	// Quantizing is deterministic: the detector again gives the same bytes.
	again, err := testData(t).Quantize(ctx, Det, loadModel(t, models, Det), Static, nil)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := encode(t, quantized(t, models, job{Det, Static}))
	d2, _ := encode(t, again)
	if !bytes.Equal(d1, d2) {
		t.Error("quantizing the detector twice wrote different files")
	}
}

// TestORTInterop compares quanta's int8 run of every quantized model with
// ONNX Runtime 1.30's run of the same QDQ file (references in testdata/ort,
// written by scripts/models/ort_interop.sh): on at least 99% of the
// elements of every output the two agree within one quantization step of
// that output (the scale of its QuantizeLinear, or for a float output the
// step of the last quantized activation feeding it).
func TestORTInterop(t *testing.T) {
	models := sharedModels(t)
	js, err := os.ReadFile(filepath.Join("testdata", "ort", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest []manifestEntry
	if err := json.Unmarshal(js, &manifest); err != nil {
		t.Fatalf("testdata/ort/manifest.json: %v", err)
	}
	ctx := context.Background()
	for _, j := range jobs {
		t.Run(j.name(), func(t *testing.T) {
			i := slices.IndexFunc(manifest, func(e manifestEntry) bool { return e.Name == j.name() })
			if i < 0 {
				t.Fatalf("testdata/ort/manifest.json has no entry %q", j.name())
			}
			e := manifest[i]
			q := quantized(t, models, j)
			if _, sum := encode(t, q); sum != e.SHA256 {
				t.Fatalf("the quantized model (sha256 %s) is not the one ONNX Runtime ran (%s): the quantizer changed; rerun scripts/models/ort_interop.sh", sum, e.SHA256)
			}
			ref, _, err := npy.ReadNPZ(filepath.Join("testdata", "ort", j.name()+".npz"))
			if err != nil {
				t.Fatal(err)
			}
			feeds := interopFeeds(t, models, j)
			if len(feeds) != e.Feeds {
				t.Fatalf("%d interop feeds, ONNX Runtime ran %d", len(feeds), e.Feeds)
			}
			p := compile(t, q)
			for _, out := range e.Outputs {
				r, ok := ref[out]
				if !ok || r.Dim(0) != len(feeds) {
					t.Fatalf("the reference has no output %q for %d feeds", out, len(feeds))
				}
			}
			// The literal QDQ run (dequantize, float op, quantize), logged
			// beside the int8 run to tell kernel from graph differences.
			lit, err := exec.Compile(q, exec.Options{Reference: true})
			if err != nil {
				t.Fatal(err)
			}
			within := map[string]int{}
			litWithin := map[string]int{}
			total := map[string]int{}
			worst := map[string]float64{}
			stepOf := map[string]float32{}
			for fi, feed := range feeds {
				got, err := p.Run(ctx, feed)
				if err != nil {
					t.Fatal(err)
				}
				litGot, err := lit.Run(ctx, feed)
				if err != nil {
					t.Fatal(err)
				}
				steps, err := OutputSteps(ctx, q, feed)
				if err != nil {
					t.Fatal(err)
				}
				for _, out := range e.Outputs {
					r := ref[out]
					n := r.Numel() / r.Dim(0)
					want := r.F32()[fi*n : (fi+1)*n]
					g := got[out].F32()
					if len(g) != n {
						t.Fatalf("feed %d, %s: %d values, ONNX Runtime %d", fi, out, len(g), n)
					}
					s := steps[out]
					stepOf[out] = s
					within[out] += WithinStep(g, want, s)
					litWithin[out] += WithinStep(litGot[out].F32(), want, s)
					total[out] += n
					for k := range g {
						d := math.Abs(float64(g[k]) - float64(want[k]))
						if s > 0 {
							d /= float64(s)
						}
						worst[out] = math.Max(worst[out], d)
					}
				}
			}
			for _, out := range e.Outputs {
				frac := float64(within[out]) / float64(total[out])
				unit := "steps"
				if stepOf[out] == 0 {
					unit = "(absolute; no quantized input)"
				}
				t.Logf("%s: %d of %d elements within one step (%.4f%%), step %.6g, largest difference %.3g %s; literal QDQ run: %.4f%% within one step", out, within[out], total[out], 100*frac, stepOf[out], worst[out], unit, 100*float64(litWithin[out])/float64(total[out]))
				if frac < 0.99 {
					t.Errorf("%s: %.4f%% of the elements within one quantization step of ONNX Runtime's, want at least 99%%", out, 100*frac)
				}
			}
		})
	}
}
