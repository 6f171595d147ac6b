package nn

import (
	"fmt"
	"sort"
	"strings"

	"github.com/quanta-go/quanta/nn/safetensors"
	"github.com/quanta-go/quanta/tensor"
)

// StateDict returns every parameter and buffer under root by dotted path
// (torch's state_dict). The tensors share storage with the module (they
// are detached views), so saving them saves the current values. A module
// reachable by two paths appears under both.
func StateDict(root Module) map[string]*tensor.Tensor { return stateTensors(root, true) }

// stateTensors is StateDict, returning the module's own tensors when
// detach is false (load writes values and qparams into them).
func stateTensors(root Module, detach bool) map[string]*tensor.Tensor {
	out := map[string]*tensor.Tensor{}
	onStack := map[Module]bool{}
	var walk func(m Module, prefix string)
	walk = func(m Module, prefix string) {
		if onStack[m] {
			return
		}
		onStack[m] = true
		defer delete(onStack, m)
		for _, buffers := range []bool{false, true} {
			for _, p := range ownTensors(m, buffers) {
				t := p.Tensor
				if detach {
					t = t.Detach()
				}
				out[join(prefix, p.Name)] = t
			}
		}
		for _, c := range Children(m) {
			walk(c.Module, join(prefix, c.Name))
		}
	}
	walk(root, "")
	return out
}

// StateDictKeys returns the keys of StateDict(root) in module order: each
// module's parameters, then its buffers, then its children, as PyTorch
// orders state_dict.
func StateDictKeys(root Module) []string {
	var keys []string
	onStack := map[Module]bool{}
	var walk func(m Module, prefix string)
	walk = func(m Module, prefix string) {
		if onStack[m] {
			return
		}
		onStack[m] = true
		defer delete(onStack, m)
		for _, p := range ownTensors(m, false) {
			keys = append(keys, join(prefix, p.Name))
		}
		for _, p := range ownTensors(m, true) {
			keys = append(keys, join(prefix, p.Name))
		}
		for _, c := range Children(m) {
			walk(c.Module, join(prefix, c.Name))
		}
	}
	walk(root, "")
	return keys
}

// LoadStateDict copies the tensors of sd into root's parameters and buffers
// (strict, as torch's load_state_dict(strict=True)). Every key of the model
// must be present, no other key may be, and each tensor must match the
// model's dtype and shape; otherwise nothing is copied and the error lists
// the missing and unexpected keys and the mismatches.
func LoadStateDict(root Module, sd map[string]*tensor.Tensor) error {
	_, _, err := load(root, sd, true)
	return err
}

// LoadStateDictNonStrict copies the tensors of sd whose keys the model has
// and returns the model keys sd lacks and the keys of sd the model lacks
// (torch's strict=False). Dtype and shape mismatches of present keys are
// still errors, and then nothing is copied.
func LoadStateDictNonStrict(root Module, sd map[string]*tensor.Tensor) (missing, unexpected []string, err error) {
	return load(root, sd, false)
}

func load(root Module, sd map[string]*tensor.Tensor, strict bool) (missing, unexpected []string, err error) {
	model := stateTensors(root, false)
	var problems []string
	for _, k := range sortedKeys(model) {
		src, ok := sd[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		dst := model[k]
		switch {
		case src == nil:
			problems = append(problems, fmt.Sprintf("%s is nil", k))
		case src.DType() != dst.DType():
			problems = append(problems, fmt.Sprintf("dtype mismatch for %s: checkpoint %v, model %v", k, src.DType(), dst.DType()))
		case !tensor.SameShape(src.Shape(), dst.Shape()):
			problems = append(problems, fmt.Sprintf("size mismatch for %s: checkpoint %v, model %v", k, src.Shape(), dst.Shape()))
		}
	}
	for _, k := range sortedKeys(sd) {
		if _, ok := model[k]; !ok {
			unexpected = append(unexpected, k)
		}
	}
	if strict {
		if len(missing) > 0 {
			problems = append(problems, "missing keys "+strings.Join(missing, ", "))
		}
		if len(unexpected) > 0 {
			problems = append(problems, "unexpected keys "+strings.Join(unexpected, ", "))
		}
	}
	if len(problems) > 0 {
		return missing, unexpected, fmt.Errorf("nn: LoadStateDict %s: %s", TypeName(root), strings.Join(problems, "; "))
	}
	for k, dst := range model {
		if src, ok := sd[k]; ok {
			dst.CopyFrom(src)
		}
	}
	for _, nm := range NamedModules(root) {
		if h, ok := nm.Module.(StateLoader); ok {
			if err := h.AfterLoadStateDict(); err != nil {
				return missing, unexpected, fmt.Errorf("nn: LoadStateDict %s: module %q: %w", TypeName(root), nm.Name, err)
			}
		}
	}
	return missing, unexpected, nil
}

// StateLoader is implemented by modules that derive state from their
// tensors (prepacked weights, cached multipliers): LoadStateDict calls
// AfterLoadStateDict on each of them once the new values are in place.
type StateLoader interface {
	AfterLoadStateDict() error
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SaveFile writes a state dict to path in the safetensors format (see
// package safetensors): the file is written to a temporary file in the same
// directory and renamed over path, so a crash never leaves a half-written
// checkpoint.
func SaveFile(path string, sd map[string]*tensor.Tensor) error {
	return safetensors.WriteFile(path, sd, nil)
}

// LoadFile reads a safetensors file written by SaveFile (or by any
// safetensors writer using the dtypes package safetensors supports). A
// truncated or corrupt file is an error naming the file and the tensor.
func LoadFile(path string) (map[string]*tensor.Tensor, error) {
	sd, _, err := safetensors.ReadFile(path)
	return sd, err
}
