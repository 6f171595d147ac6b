package nn

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/quanta-go/quanta/tensor"
)

type fieldKind uint8

const (
	fieldChild fieldKind = iota
	fieldParam
	fieldBuffer
)

// fieldInfo describes one exported field of a module struct that holds a
// child module, a parameter or a buffer. index walks through anonymous
// embedded structs.
type fieldInfo struct {
	index  []int
	name   string
	goName string
	kind   fieldKind
	typ    reflect.Type
}

var (
	moduleType = reflect.TypeFor[Module]()
	tensorType = reflect.TypeFor[*tensor.Tensor]()
	baseType   = reflect.TypeFor[Base]()
	fieldCache sync.Map // reflect.Type -> []fieldInfo
)

// structFields returns the module-relevant fields of struct type t.
func structFields(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var out []fieldInfo
	collectFields(t, nil, &out, map[reflect.Type]bool{})
	fieldCache.Store(t, out)
	return out
}

func collectFields(t reflect.Type, prefix []int, out *[]fieldInfo, seen map[reflect.Type]bool) {
	if seen[t] {
		return
	}
	seen[t] = true
	defer delete(seen, t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		idx := append(append([]int(nil), prefix...), i)
		tag, hasTag := f.Tag.Lookup("nn")
		if tag == "-" {
			continue
		}
		if f.Anonymous {
			ft := f.Type
			if ft == baseType || ft == reflect.PointerTo(baseType) {
				continue
			}
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, idx, out, seen)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		if !hasTag || name == "" {
			name = lowerFirst(f.Name)
		}
		switch {
		case f.Type == tensorType:
			k := fieldParam
			if opt == "buffer" {
				k = fieldBuffer
			}
			*out = append(*out, fieldInfo{idx, name, f.Name, k, f.Type})
		case f.Type.Implements(moduleType):
			*out = append(*out, fieldInfo{idx, name, f.Name, fieldChild, f.Type})
		}
	}
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

// fieldValue returns the field of struct value v at index, and false when an
// embedded pointer on the way is nil.
func fieldValue(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

// structOf returns the struct value behind module m, or false.
func structOf(m Module) (reflect.Value, bool) {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	return v.Elem(), true
}

// Children returns m's direct children in order: module-typed fields, then
// Container children, then the ActivationPostProcess slot. Nil fields are
// left out.
func Children(m Module) []NamedModule {
	var out []NamedModule
	if sv, ok := structOf(m); ok {
		for _, f := range structFields(sv.Type()) {
			if f.kind != fieldChild {
				continue
			}
			fv, ok := fieldValue(sv, f.index)
			if !ok || fv.IsNil() {
				continue
			}
			out = append(out, NamedModule{f.name, fv.Interface().(Module)})
		}
	}
	if c, ok := m.(Container); ok {
		for _, ch := range c.ContainerChildren() {
			if ch.Module != nil {
				out = append(out, ch)
			}
		}
	}
	if app := m.ModuleBase().ActivationPostProcess; app != nil {
		out = append(out, NamedModule{"activation_post_process", app})
	}
	return out
}

// ownTensors returns m's own parameters (buffers when wantBuffers): tensor
// fields first, then those registered on the Base. Nil fields are left out.
func ownTensors(m Module, wantBuffers bool) []NamedTensor {
	var out []NamedTensor
	want := fieldParam
	if wantBuffers {
		want = fieldBuffer
	}
	if sv, ok := structOf(m); ok {
		for _, f := range structFields(sv.Type()) {
			if f.kind != want {
				continue
			}
			fv, ok := fieldValue(sv, f.index)
			if !ok || fv.IsNil() {
				continue
			}
			out = append(out, NamedTensor{f.name, fv.Interface().(*tensor.Tensor)})
		}
	}
	b := m.ModuleBase()
	if wantBuffers {
		out = append(out, b.buffers...)
	} else {
		out = append(out, b.params...)
	}
	return out
}

func join(prefix, name string) string {
	switch {
	case prefix == "":
		return name
	case name == "":
		return prefix
	}
	return prefix + "." + name
}

// NamedModules returns root and all its descendants in pre-order with their
// dotted paths ("" for root), each module once (a module reachable by two
// paths is listed under the first), like torch.nn.Module.named_modules.
func NamedModules(root Module) []NamedModule {
	var out []NamedModule
	seen := map[Module]bool{}
	var walk func(m Module, path string)
	walk = func(m Module, path string) {
		if seen[m] {
			return
		}
		seen[m] = true
		out = append(out, NamedModule{path, m})
		for _, c := range Children(m) {
			walk(c.Module, join(path, c.Name))
		}
	}
	walk(root, "")
	return out
}

// Modules returns the modules of NamedModules without their paths.
func Modules(root Module) []Module {
	nm := NamedModules(root)
	out := make([]Module, len(nm))
	for i, n := range nm {
		out[i] = n.Module
	}
	return out
}

// AssignPaths records in every module under root its dotted path (Base.Path)
// and type name, which tracing reports. Set does this for the modules it
// inserts.
func AssignPaths(root Module) { assignPaths(root, "") }

func assignPaths(root Module, prefix string) {
	for _, nm := range NamedModules(root) {
		b := nm.Module.ModuleBase()
		b.path = join(prefix, nm.Name)
		b.typeName = TypeName(nm.Module)
	}
}

// NamedParameters returns every parameter under root with its dotted path
// ("features.0.weight"), module by module in pre-order, each tensor once.
func NamedParameters(root Module) []NamedTensor { return namedTensors(root, false) }

// NamedBuffers returns every buffer under root with its dotted path, each
// tensor once.
func NamedBuffers(root Module) []NamedTensor { return namedTensors(root, true) }

func namedTensors(root Module, buffers bool) []NamedTensor {
	var out []NamedTensor
	seen := map[*tensor.Tensor]bool{}
	for _, nm := range NamedModules(root) {
		for _, p := range ownTensors(nm.Module, buffers) {
			if !seen[p.Tensor] {
				seen[p.Tensor] = true
				out = append(out, NamedTensor{join(nm.Name, p.Name), p.Tensor})
			}
		}
	}
	return out
}

// Parameters returns the tensors of NamedParameters, the list an optimizer
// takes.
func Parameters(root Module) []*tensor.Tensor {
	np := NamedParameters(root)
	out := make([]*tensor.Tensor, len(np))
	for i, p := range np {
		out[i] = p.Tensor
	}
	return out
}

// Train puts root and all its descendants in training mode.
func Train(root Module) { setTraining(root, true) }

// Eval puts root and all its descendants in evaluation mode (BatchNorm uses
// running statistics, Dropout does nothing).
func Eval(root Module) { setTraining(root, false) }

func setTraining(root Module, on bool) {
	for _, m := range Modules(root) {
		m.ModuleBase().eval = !on
	}
}

// ZeroGrad clears the gradient of every parameter under root (sets it to
// nil, as torch's zero_grad(set_to_none=True)).
func ZeroGrad(root Module) {
	for _, p := range Parameters(root) {
		p.SetGrad(nil)
	}
}

// Get returns the module at the dotted path under root ("" is root itself).
func Get(root Module, path string) (Module, error) {
	if root == nil {
		return nil, fmt.Errorf("nn: Get %q: nil root module", path)
	}
	if path == "" {
		return root, nil
	}
	m := root
	done := ""
	for _, name := range strings.Split(path, ".") {
		c, ok := child(m, name)
		if !ok {
			return nil, fmt.Errorf("nn: Get %q: %s has no child %q", path, describe(m, done), name)
		}
		m, done = c, join(done, name)
	}
	return m, nil
}

func describe(m Module, path string) string {
	if path == "" {
		return fmt.Sprintf("root %s", TypeName(m))
	}
	return fmt.Sprintf("%s %q", TypeName(m), path)
}

func child(m Module, name string) (Module, bool) {
	for _, c := range Children(m) {
		if c.Name == name {
			return c.Module, true
		}
	}
	return nil, false
}

// ErrSetRoot is returned by Set for the empty path: the root cannot be
// replaced in place.
var ErrSetRoot = errors.New("nn: Set: the empty path names the root, which cannot be replaced")

// Set replaces the module at the dotted path under root with m, as eager
// quantization swaps modules. The parent must hold the child in a struct
// field whose type can hold m, in a Container, or in its
// ActivationPostProcess slot; a nil field may be filled. Set records the
// new subtree's paths (see AssignPaths).
func Set(root Module, path string, m Module) error {
	if path == "" {
		return ErrSetRoot
	}
	if m == nil || (reflect.ValueOf(m).Kind() == reflect.Pointer && reflect.ValueOf(m).IsNil()) {
		return fmt.Errorf("nn: Set %q: nil module", path)
	}
	parentPath, name := "", path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parentPath, name = path[:i], path[i+1:]
	}
	parent, err := Get(root, parentPath)
	if err != nil {
		return fmt.Errorf("nn: Set %q: parent: %w", path, err)
	}
	if err := setChild(parent, parentPath, name, m); err != nil {
		return fmt.Errorf("nn: Set %q: %w", path, err)
	}
	assignPaths(m, path)
	return nil
}

func setChild(parent Module, parentPath, name string, m Module) error {
	if sv, ok := structOf(parent); ok {
		for _, f := range structFields(sv.Type()) {
			if f.name != name {
				continue
			}
			if f.kind != fieldChild {
				return fmt.Errorf("%s field %s is a tensor, not a module", describe(parent, parentPath), f.goName)
			}
			fv, ok := fieldValue(sv, f.index)
			if !ok {
				return fmt.Errorf("%s field %s is inside a nil embedded struct", describe(parent, parentPath), f.goName)
			}
			mt := reflect.TypeOf(m)
			if !mt.AssignableTo(f.typ) {
				return fmt.Errorf("%s field %s of type %v cannot hold %v (declare the field with an interface type such as nn.Layer)",
					describe(parent, parentPath), f.goName, f.typ, mt)
			}
			if !fv.CanSet() {
				return fmt.Errorf("%s field %s cannot be set", describe(parent, parentPath), f.goName)
			}
			fv.Set(reflect.ValueOf(m))
			return nil
		}
	}
	if c, ok := parent.(Container); ok {
		for _, ch := range c.ContainerChildren() {
			if ch.Name == name {
				return c.SetContainerChild(name, m)
			}
		}
	}
	if name == "activation_post_process" {
		parent.ModuleBase().ActivationPostProcess = m
		return nil
	}
	return fmt.Errorf("%s has no child %q", describe(parent, parentPath), name)
}
