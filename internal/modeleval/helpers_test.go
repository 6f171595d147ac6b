package modeleval

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/onnx"
)

// sharedModels returns the shared models folder, skipping the test with a
// message naming the folder when it is absent.
func sharedModels(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := ModelsDir(wd)
	if errors.Is(err, ErrNoModels) {
		t.Skipf("the real-model test needs the folder %s (shared/models beside the repository); it is absent", dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	dataOnce sync.Once
	dataVal  *Data
	dataErr  error
)

// testData loads testdata once per test binary.
func testData(t *testing.T) *Data {
	t.Helper()
	dataOnce.Do(func() { dataVal, dataErr = Load("testdata") })
	if dataErr != nil {
		t.Fatal(dataErr)
	}
	return dataVal
}

// loadModel loads one of the shared models.
func loadModel(t *testing.T, models string, m Model) *graph.Model {
	t.Helper()
	g, err := onnx.Load(filepath.Join(models, m.File()))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// compile compiles a model for running.
func compile(t *testing.T, g *graph.Model) *exec.Program {
	t.Helper()
	p, err := exec.Compile(g, exec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// evalData returns the shared models folder (skipping as sharedModels
// does), the evaluation data and the recognizer's dictionary.
func evalData(t *testing.T) (string, *Data, *Dict) {
	t.Helper()
	models := sharedModels(t)
	d := testData(t)
	dict, err := LoadDict(filepath.Join(models, DictFile))
	if err != nil {
		t.Fatal(err)
	}
	return models, d, dict
}
