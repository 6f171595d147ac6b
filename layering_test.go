package quanta_test

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// layer places packages (directories relative to the module root) in the
// dependency order of docs/ARCHITECTURE.md. A package may import packages of
// lower rows only, plus the same-row edges listed in sameRow. A pattern
// ending in "/..." covers a directory and everything below it; the most
// specific pattern wins.
type layer struct {
	pattern string
	row     int
	// only, when set, lists the module packages (patterns) the package may
	// import at all, narrowing the row rule.
	only []string
}

var layers = []layer{
	{pattern: "internal/cpu", row: 0},
	{pattern: "internal/parallel", row: 0},
	{pattern: "tensor", row: 0},
	// Kernels: slices in, slices out; they never see a tensor.
	{pattern: "internal/kernels/...", row: 1, only: []string{"internal/cpu", "internal/parallel", "internal/kernels/..."}},
	// data needs tensor only.
	{pattern: "data", row: 1, only: []string{"tensor"}},
	// npy (.npy/.npz files) needs tensor only.
	{pattern: "npy", row: 1, only: []string{"tensor"}},
	{pattern: "autograd", row: 2},
	// ops/quantized and ops/dynamic hold the quantized and dynamic ops.
	{pattern: "ops/...", row: 2},
	// quant's core is shared by eager and graph mode, so it never imports
	// nn or graph.
	{pattern: "quant/...", row: 3},
	{pattern: "graph/...", row: 3},
	{pattern: "internal/gradcheck", row: 3},
	{pattern: "nn/...", row: 4},
	// Quantized modules, eager-mode and graph-mode quantization.
	{pattern: "nn/quantized/...", row: 5},
	{pattern: "nn/intrinsic/...", row: 5},
	{pattern: "nn/qat/...", row: 5},
	// Float modules rebuilt from observable parts (LSTM, attention).
	{pattern: "nn/quantizable/...", row: 5},
	{pattern: "eager/...", row: 5},
	// Tracing Go models into the graph IR (graph mode's front door); it
	// never imports eager.
	{pattern: "fx/...", row: 5},
	{pattern: "onnx/...", row: 6, only: []string{"graph/...", "tensor", "quant/..."}},
	{pattern: "cmd/...", row: 7},
	{pattern: "internal/demo/...", row: 7},
	{pattern: "internal/modeleval/...", row: 7},
}

// sameRow lists the imports allowed between packages of one row
// (importer pattern -> imported pattern).
var sameRow = [][2]string{
	{"ops/...", "autograd"},
	{"ops/...", "ops/..."},
	{"graph/...", "quant/..."},
	{"quant/...", "quant/..."},
	{"graph/...", "graph/..."},
	{"nn/...", "nn/..."},
	{"internal/kernels/...", "internal/kernels/..."},
	{"cmd/...", "internal/demo/..."},
	{"cmd/...", "internal/modeleval/..."},
	{"nn/qat/...", "nn/intrinsic/..."},
	{"nn/quantized/...", "nn/intrinsic/..."},
	{"nn/quantized/...", "nn/quantized/..."},
	{"eager/...", "nn/intrinsic/..."},
	{"eager/...", "nn/qat/..."},
	{"eager/...", "nn/quantized/..."},
	{"eager/...", "nn/quantizable/..."},
}

// thirdPartyFromRow is the lowest row that may import modules other than
// the standard library and golang.org/x/sys.
const thirdPartyFromRow = 5

func matches(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// layerOf returns the most specific layer covering pkg.
func layerOf(pkg string) (layer, bool) {
	best, found := layer{}, false
	for _, l := range layers {
		if matches(l.pattern, pkg) && (!found || len(l.pattern) > len(best.pattern)) {
			best, found = l, true
		}
	}
	return best, found
}

func modulePath(t *testing.T) string {
	f, err := os.Open("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.TrimSpace(mod)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}

// packageImports parses the non-test Go files of the module (every build
// tag and architecture) and returns each package's imports.
func packageImports(t *testing.T) map[string]map[string][]string {
	pkgs := map[string]map[string][]string{} // pkg dir -> import -> files
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != "." && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if pkgs[dir] == nil {
			pkgs[dir] = map[string][]string{}
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			pkgs[dir][p] = append(pkgs[dir][p], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func allowedSameRow(from, to string) bool {
	for _, e := range sameRow {
		if matches(e[0], from) && matches(e[1], to) {
			return true
		}
	}
	return false
}

// checkImport returns why pkg may not import imp ("" when it may).
func checkImport(mod, pkg string, from layer, imp string) string {
	rel, internal := strings.CutPrefix(imp, mod+"/")
	if !internal {
		first, _, _ := strings.Cut(imp, "/")
		if !strings.Contains(first, ".") || imp == "golang.org/x/sys" || strings.HasPrefix(imp, "golang.org/x/sys/") {
			return "" // standard library, or x/sys
		}
		if from.row < thirdPartyFromRow {
			return fmt.Sprintf("row %d packages use only the standard library and golang.org/x/sys", from.row)
		}
		return ""
	}
	to, ok := layerOf(rel)
	if !ok {
		return fmt.Sprintf("%s has no row in the layering table", rel)
	}
	if from.only != nil {
		ok := false
		for _, p := range from.only {
			ok = ok || matches(p, rel)
		}
		if !ok {
			return fmt.Sprintf("%s may import only %v", from.pattern, from.only)
		}
	}
	switch {
	case to.row < from.row:
		return ""
	case to.row == from.row && allowedSameRow(pkg, rel):
		return ""
	}
	return fmt.Sprintf("row %d (%s) may not import row %d (%s)", from.row, from.pattern, to.row, to.pattern)
}

// TestLayering enforces the package layering of docs/ARCHITECTURE.md on the
// imports of every non-test file in the module.
func TestLayering(t *testing.T) {
	mod := modulePath(t)
	pkgs := packageImports(t)
	dirs := make([]string, 0, len(pkgs))
	for d := range pkgs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		if dir == "." {
			t.Errorf("the module root holds non-test Go files; packages live in directories")
			continue
		}
		from, ok := layerOf(dir)
		if !ok {
			t.Errorf("package %s has no row in the layering table (layering_test.go, docs/ARCHITECTURE.md): add it", dir)
			continue
		}
		imps := make([]string, 0, len(pkgs[dir]))
		for imp := range pkgs[dir] {
			imps = append(imps, imp)
		}
		sort.Strings(imps)
		for _, imp := range imps {
			if why := checkImport(mod, dir, from, imp); why != "" {
				t.Errorf("%s imports %s (%s): %s", dir, imp, strings.Join(pkgs[dir][imp], ", "), why)
			}
		}
	}
}

// TestLayeringRules checks the checker on imports the table must reject.
func TestLayeringRules(t *testing.T) {
	const mod = "example.com/q"
	cases := []struct {
		pkg, imp string
		ok       bool
	}{
		{"ops", mod + "/autograd", true},
		{"autograd", mod + "/ops", false},
		{"ops", mod + "/tensor", true},
		{"ops", mod + "/internal/kernels/sgemm", true},
		{"tensor", mod + "/internal/parallel", false},
		{"tensor", mod + "/ops", false},
		{"internal/kernels/conv", mod + "/internal/kernels/sgemm", true},
		{"internal/kernels/conv", mod + "/internal/parallel", true},
		{"internal/kernels/conv", mod + "/tensor", false},
		{"quant/observer", mod + "/quant", true},
		{"quant", mod + "/nn", false},
		{"quant", mod + "/graph", false},
		{"graph", mod + "/quant", true},
		{"nn", mod + "/ops", true},
		{"nn/optim", mod + "/nn", true},
		{"nn", mod + "/data", true},
		{"data", mod + "/ops", false},
		{"npy", mod + "/tensor", true},
		{"npy", mod + "/data", false},
		{"onnx", mod + "/graph", true},
		{"onnx", mod + "/nn", false},
		{"cmd/quanta", mod + "/internal/demo", true},
		{"internal/demo", mod + "/nn", true},
		{"nn", mod + "/cmd/quanta", false},
		{"nn", mod + "/newpkg", false},
		{"tensor", "golang.org/x/sys/cpu", true},
		{"tensor", "github.com/some/dep", false},
		{"cmd/quanta", "github.com/schollz/progressbar/v3", true},
		{"fx", mod + "/graph/exec", true},
		{"fx", mod + "/nn", true},
		{"fx", mod + "/eager", false},
		{"fx", mod + "/onnx", false},
	}
	for _, c := range cases {
		from, ok := layerOf(c.pkg)
		if !ok {
			t.Fatalf("%s has no layer", c.pkg)
		}
		why := checkImport(mod, c.pkg, from, c.imp)
		if (why == "") != c.ok {
			t.Errorf("%s importing %s: allowed %v, want %v (%s)", c.pkg, c.imp, why == "", c.ok, why)
		}
	}
}
