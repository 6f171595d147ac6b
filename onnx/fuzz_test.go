package onnx

import (
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets start from the vendored node cases and the hand-built
// model (added here) and from the committed corpus in testdata/fuzz. Any
// input must decode or fail with an error, never panic; what decodes must
// export, and the export must import as the same graph.

func addSeeds(f *testing.F, pattern string) {
	paths, err := filepath.Glob(filepath.Join("testdata", "node", "*", pattern))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzDecodeModel(f *testing.F) {
	addSeeds(f, "model.onnx")
	f.Add([]byte(handModel()))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data, DecodeOptions{})
		if err != nil {
			return
		}
		out, err := Encode(m)
		if err != nil {
			t.Fatalf("a decoded model does not export: %v", err)
		}
		m2, err := Decode(out, DecodeOptions{})
		if err != nil {
			t.Fatalf("the export does not decode: %v", err)
		}
		if a, b := m.Graph.String(), m2.Graph.String(); a != b {
			t.Fatalf("the export decodes differently:\n%s\nvs\n%s", a, b)
		}
	})
}

func FuzzDecodeTensor(f *testing.F) {
	addSeeds(f, filepath.Join("test_data_set_0", "*.pb"))
	f.Fuzz(func(t *testing.T, data []byte) {
		nt, err := DecodeNamedTensor(data)
		if err != nil {
			return
		}
		out, err := EncodeTensor(nt)
		if err != nil {
			t.Fatalf("a decoded tensor does not encode: %v", err)
		}
		nt2, err := DecodeNamedTensor(out)
		if err != nil {
			t.Fatalf("the encoding does not decode: %v", err)
		}
		if a, b := tensorSummary(nt.Elem, nt.Tensor), tensorSummary(nt2.Elem, nt2.Tensor); a != b || nt.Name != nt2.Name {
			t.Fatalf("the encoding decodes differently:\n%s\nvs\n%s", a, b)
		}
	})
}
