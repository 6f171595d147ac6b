package nn

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// block is a user module with a concrete-typed field and an interface field.
type block struct {
	Base
	Conv *Conv2d `nn:"conv"`
	Act  Layer
	// Skip is left out of the module tree by its tag, note by being unexported.
	Skip  *Linear `nn:"-"`
	Scale *tensor.Tensor
	Stats *tensor.Tensor `nn:"stats,buffer"`
	note  *Linear
}

func (b *block) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(b, x, func(x *tensor.Tensor) *tensor.Tensor { return b.Act.Forward(b.Conv.Forward(x)) })
}

// net is a user model holding a Sequential of blocks and a head.
type net struct {
	Base
	Features *Sequential `nn:"features"`
	Pool     Layer
	FC       Layer `nn:"fc"`
	Empty    Layer
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newBlock(rng *tensor.RNG) *block {
	return &block{
		Conv:  must(NewConv2d(2, 2, Pair(3), Conv2dOptions{Padding: Pair(1), RNG: rng})),
		Act:   NewReLU(),
		Skip:  must(NewLinear(1, 1, LinearOptions{RNG: rng})),
		Scale: tensor.Ones(1).SetRequiresGrad(true),
		Stats: tensor.Zeros(2),
	}
}

func newNet() *net {
	rng := tensor.NewRNG(7)
	return &net{
		Features: NewSequential(newBlock(rng), NewIdentity(), newBlock(rng)),
		Pool:     must(NewAdaptiveAvgPool2d(Pair(1))),
		FC:       must(NewLinear(2, 3, LinearOptions{RNG: rng})),
	}
}

func names[T any](xs []T, name func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = name(x)
	}
	return out
}

func TestNamedModulesAndTypeNames(t *testing.T) {
	m := newNet()
	nm := NamedModules(m)
	got := names(nm, func(n NamedModule) string { return n.Name + ":" + TypeName(n.Module) })
	want := []string{":net", "features:Sequential", "features.0:block", "features.0.conv:Conv2d", "features.0.act:ReLU",
		"features.1:Identity", "features.2:block", "features.2.conv:Conv2d", "features.2.act:ReLU", "pool:AdaptiveAvgPool2d", "fc:Linear"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NamedModules:\n got %v\nwant %v", got, want)
	}
	if n := len(Modules(m)); n != len(want) {
		t.Errorf("Modules: %d", n)
	}
}

func TestNamedParametersBuffersStateDict(t *testing.T) {
	m := newNet()
	got := names(NamedParameters(m), func(n NamedTensor) string { return n.Name })
	want := []string{"features.0.scale", "features.0.conv.weight", "features.0.conv.bias",
		"features.2.scale", "features.2.conv.weight", "features.2.conv.bias", "fc.weight", "fc.bias"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NamedParameters:\n got %v\nwant %v", got, want)
	}
	if got := names(NamedBuffers(m), func(n NamedTensor) string { return n.Name }); !reflect.DeepEqual(got, []string{"features.0.stats", "features.2.stats"}) {
		t.Errorf("NamedBuffers: %v", got)
	}
	if len(Parameters(m)) != len(want) {
		t.Errorf("Parameters: %d", len(Parameters(m)))
	}
	keys := StateDictKeys(m)
	wantKeys := []string{"features.0.scale", "features.0.stats", "features.0.conv.weight", "features.0.conv.bias",
		"features.2.scale", "features.2.stats", "features.2.conv.weight", "features.2.conv.bias", "fc.weight", "fc.bias"}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("StateDictKeys:\n got %v\nwant %v", keys, wantKeys)
	}
	sd := StateDict(m)
	if len(sd) != len(wantKeys) {
		t.Errorf("StateDict has %d keys", len(sd))
	}
	// State dict tensors share storage with the parameters.
	fc := m.FC.(*Linear)
	sd["fc.bias"].F32()[0] = 42
	if fc.Bias.F32()[0] != 42 {
		t.Error("StateDict tensor does not share storage")
	}
	if sd["fc.bias"].RequiresGrad() {
		t.Error("StateDict tensor requires grad")
	}
}

func TestSharedModulesAndParams(t *testing.T) {
	l := must(NewLinear(2, 2, LinearOptions{}))
	s := NewSequential(l, NewReLU(), l)
	if n := len(NamedModules(s)); n != 3 {
		t.Errorf("NamedModules lists %d modules, want 3 (shared listed once)", n)
	}
	if n := len(NamedParameters(s)); n != 2 {
		t.Errorf("NamedParameters lists %d, want 2", n)
	}
	if keys := StateDictKeys(s); len(keys) != 4 || keys[2] != "2.weight" {
		t.Errorf("state dict keys %v: a shared module appears under each path", keys)
	}
}

func TestGetSet(t *testing.T) {
	m := newNet()
	c, err := Get(m, "features.2.conv")
	if err != nil {
		t.Fatal(err)
	}
	if c != m.Features.At(2).(*block).Conv {
		t.Error("Get returned the wrong module")
	}
	if r, _ := Get(m, ""); r != Module(m) {
		t.Error("Get of the empty path is not the root")
	}
	for path, want := range map[string]string{
		"features.7":        `Sequential "features" has no child "7"`,
		"features.0.conv.x": `Conv2d "features.0.conv" has no child "x"`,
		"head":              `root net has no child "head"`,
		"features.01":       `no child "01"`,
	} {
		if _, err := Get(m, path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Get(%q) error %v, want mention of %s", path, err, want)
		}
	}

	// Replace a child of a user struct inside a Sequential inside a user
	// struct, through an interface-typed field.
	id := NewIdentity()
	if err := Set(m, "features.0.act", id); err != nil {
		t.Fatal(err)
	}
	if m.Features.At(0).(*block).Act != Layer(id) {
		t.Error("Set did not replace features.0.act")
	}
	if id.Path() != "features.0.act" {
		t.Errorf("new module path %q", id.Path())
	}
	// Replace a Sequential element.
	seqNew := NewSequential(NewReLU())
	if err := Set(m, "features.1", seqNew); err != nil {
		t.Fatal(err)
	}
	if got, _ := Get(m, "features.1.0"); got != seqNew.At(0) {
		t.Error("Set of a Sequential element failed")
	}
	if seqNew.At(0).ModuleBase().Path() != "features.1.0" {
		t.Errorf("descendant path %q", seqNew.At(0).ModuleBase().Path())
	}
	// Fill a nil interface field.
	if err := Set(m, "empty", NewReLU()); err != nil {
		t.Fatal(err)
	}
	if m.Empty == nil {
		t.Error("nil field not filled")
	}

	errCases := []struct {
		path string
		mod  Module
		want string
	}{
		{"features.0.conv", NewIdentity(), "field Conv of type *nn.Conv2d cannot hold *nn.Identity"},
		{"features.0.scale", NewIdentity(), "is a tensor"},
		{"features.5", NewIdentity(), "no child"},
		{"features.0", NewModuleList(), "not an nn.Layer"},
		{"nothing.here", NewIdentity(), "parent"},
		{"fc", nil, "nil module"},
		{"fc", (*Linear)(nil), "nil module"},
		{"features.0.skip", NewIdentity(), "no child"},
		{"features.0.note", NewIdentity(), "no child"},
	}
	for _, c := range errCases {
		err := Set(m, c.path, c.mod)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("Set(%q) error %v, want mention of the path and %q", c.path, err, c.want)
		}
	}
	if err := Set(m, "", NewIdentity()); err != ErrSetRoot {
		t.Errorf("Set of root: %v", err)
	}
}

// wrapped embeds a Linear: its fields are the wrapper's own.
type wrapped struct {
	*Linear
	Extra *tensor.Tensor `nn:"extra"`
}

func TestEmbeddedModuleFlattens(t *testing.T) {
	w := &wrapped{Linear: must(NewLinear(2, 2, LinearOptions{})), Extra: tensor.Zeros(1)}
	got := names(NamedParameters(w), func(n NamedTensor) string { return n.Name })
	if !reflect.DeepEqual(got, []string{"weight", "bias", "extra"}) {
		t.Errorf("params %v", got)
	}
	if TypeName(w) != "wrapped" {
		t.Errorf("TypeName %q", TypeName(w))
	}
}

func TestActivationPostProcessSlot(t *testing.T) {
	l := must(NewLinear(2, 2, LinearOptions{}))
	obs := &block{Stats: tensor.Zeros(3)}
	l.ActivationPostProcess = obs
	keys := StateDictKeys(l)
	if !reflect.DeepEqual(keys, []string{"weight", "bias", "activation_post_process.stats"}) {
		t.Errorf("keys %v", keys)
	}
	repl := &block{Stats: tensor.Zeros(3)}
	if err := Set(l, "activation_post_process", repl); err != nil || l.ActivationPostProcess != Module(repl) {
		t.Errorf("Set activation_post_process: %v", err)
	}
	l.QConfig = "any value"
	if l.ModuleBase().QConfig != "any value" {
		t.Error("QConfig slot")
	}
}

func TestTrainEvalZeroGrad(t *testing.T) {
	m := newNet()
	for _, x := range Modules(m) {
		if !x.ModuleBase().Training() {
			t.Fatal("new module not in training mode")
		}
	}
	Eval(m)
	for _, nm := range NamedModules(m) {
		if nm.Module.ModuleBase().Training() {
			t.Errorf("%q still training after Eval", nm.Name)
		}
	}
	Train(m.Features)
	if !m.Features.At(0).(*block).Conv.Training() || m.FC.ModuleBase().Training() {
		t.Error("Train(sub) should only affect the subtree")
	}
	for _, p := range Parameters(m) {
		p.SetGrad(tensor.Ones(p.Shape()...))
	}
	ZeroGrad(m)
	for _, p := range NamedParameters(m) {
		if p.Tensor.Grad() != nil {
			t.Errorf("%s grad not cleared", p.Name)
		}
	}
}

func TestRegisteredTensors(t *testing.T) {
	var b Base
	b.RegisterParameter("w", tensor.Zeros(2))
	b.RegisterBuffer("count", tensor.New(tensor.Int64, 1))
	if !b.Param("w").RequiresGrad() || b.Buffer("count") == nil || b.Param("x") != nil || b.Buffer("w") != nil {
		t.Error("registered lookup")
	}
	defer func() {
		if recover() == nil {
			t.Error("duplicate registration did not panic")
		}
	}()
	b.RegisterBuffer("w", tensor.Zeros(1))
}

func TestHooks(t *testing.T) {
	r := NewReLU()
	var seen []string
	rmPre := r.RegisterForwardPreHook(func(m Module, in []*tensor.Tensor) []*tensor.Tensor {
		seen = append(seen, "pre:"+TypeName(m))
		return []*tensor.Tensor{tensor.FromFloat32([]float32{-1, 2})}
	})
	rm := r.RegisterForwardHook(func(m Module, in, out []*tensor.Tensor) []*tensor.Tensor {
		seen = append(seen, "post")
		return []*tensor.Tensor{ops.MulScalar(out[0], 10)}
	})
	y := r.Forward(tensor.FromFloat32([]float32{5, 5}))
	if y.F32()[0] != 0 || y.F32()[1] != 20 || !reflect.DeepEqual(seen, []string{"pre:ReLU", "post"}) {
		t.Errorf("hooked output %v, calls %v", y, seen)
	}
	rmPre()
	rm()
	y = r.Forward(tensor.FromFloat32([]float32{5, -5}))
	if y.F32()[0] != 5 || y.F32()[1] != 0 || len(seen) != 2 {
		t.Errorf("after removal %v, calls %v", y, seen)
	}
}

type recTracer struct{ events []string }

func (r *recTracer) Op(name string, attrs any, in, out []*tensor.Tensor) {
	r.events = append(r.events, "op:"+name)
}
func (r *recTracer) EnterModule(path, typ string, in []*tensor.Tensor) {
	r.events = append(r.events, "enter:"+path+":"+typ)
}
func (r *recTracer) ExitModule(path, typ string, out []*tensor.Tensor) {
	r.events = append(r.events, "exit:"+path)
}

func TestTracerSeesModulePaths(t *testing.T) {
	rng := tensor.NewRNG(1)
	m := &net{
		Features: NewSequential(must(NewLinear(2, 2, LinearOptions{RNG: rng})), NewReLU()),
		Pool:     NewIdentity(),
		FC:       NewReLU(),
	}
	AssignPaths(m)
	tr := &recTracer{}
	prev := ops.SetTracer(tr)
	m.Features.Forward(tensor.Zeros(1, 2))
	ops.SetTracer(prev)
	want := []string{"enter:features:Sequential", "enter:features.0:Linear", "op:Linear", "exit:features.0",
		"enter:features.1:ReLU", "op:ReLU", "exit:features.1", "exit:features"}
	if !reflect.DeepEqual(tr.events, want) {
		t.Errorf("events\n got %v\nwant %v", tr.events, want)
	}
}

func TestLoadStateDictStrict(t *testing.T) {
	src, dst := newNet(), newNet()
	for _, p := range Parameters(src) {
		for i := range p.F32() {
			p.F32()[i] = float32(i) + 0.5
		}
	}
	if err := LoadStateDict(dst, StateDict(src)); err != nil {
		t.Fatal(err)
	}
	for k, v := range StateDict(dst) {
		if tensor.MaxAbsDiff(v, StateDict(src)[k]) != 0 {
			t.Errorf("%s not loaded", k)
		}
	}
	sd := StateDict(src)
	delete(sd, "fc.bias")
	sd["fc.extra"] = tensor.Zeros(1)
	sd["fc.weight"] = tensor.Zeros(2, 3)
	before := dst.FC.(*Linear).Weight.Clone()
	err := LoadStateDict(dst, sd)
	if err == nil {
		t.Fatal("bad state dict loaded")
	}
	for _, want := range []string{"missing keys fc.bias", "unexpected keys fc.extra", "size mismatch for fc.weight: checkpoint [2 3], model [3 2]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if tensor.MaxAbsDiff(before, dst.FC.(*Linear).Weight) != 0 {
		t.Error("a failed load modified the model")
	}
	sd = StateDict(src)
	sd["features.0.stats"] = tensor.New(tensor.Int64, 2)
	if err := LoadStateDict(dst, sd); err == nil || !strings.Contains(err.Error(), "dtype mismatch for features.0.stats") {
		t.Errorf("dtype mismatch: %v", err)
	}
	sd = StateDict(src)
	delete(sd, "fc.bias")
	sd["other"] = tensor.Zeros(1)
	missing, unexpected, err := LoadStateDictNonStrict(dst, sd)
	if err != nil || !reflect.DeepEqual(missing, []string{"fc.bias"}) || !reflect.DeepEqual(unexpected, []string{"other"}) {
		t.Errorf("non-strict: %v %v %v", missing, unexpected, err)
	}
}

func TestStateDictFileRoundTrip(t *testing.T) {
	src := newNet()
	bn := must(NewBatchNorm2d(2, BatchNormOptions{}))
	bn.NumBatchesTracked.I64()[0] = 9
	bn.RunningMean.F32()[1] = 0.25
	src.Pool = bn
	path := filepath.Join(t.TempDir(), "net.safetensors")
	if err := SaveFile(path, StateDict(src)); err != nil {
		t.Fatal(err)
	}
	sd, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ManualSeed(99)
	dst := newNet()
	dst.Pool = must(NewBatchNorm2d(2, BatchNormOptions{}))
	if err := LoadStateDict(dst, sd); err != nil {
		t.Fatal(err)
	}
	want := StateDict(src)
	for k, v := range StateDict(dst) {
		if v.DType() != want[k].DType() || !tensor.SameShape(v.Shape(), want[k].Shape()) {
			t.Errorf("%s: %v vs %v", k, v, want[k])
		}
		a, b := v.Float64s(), want[k].Float64s()
		for i := range a {
			if a[i] != b[i] {
				t.Errorf("%s[%d] = %g, want %g", k, i, a[i], b[i])
			}
		}
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("LoadFile of a missing file")
	}
}
