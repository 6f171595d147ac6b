package nn

import (
	"fmt"
	"strconv"

	"github.com/quanta-go/quanta/tensor"
)

// Sequential runs its layers in order, each on the previous one's output
// (torch.nn.Sequential). Its children are named "0", "1", ....
type Sequential struct {
	Base
	layers []Layer
}

// NewSequential returns a Sequential of layers.
func NewSequential(layers ...Layer) *Sequential {
	return &Sequential{layers: append([]Layer(nil), layers...)}
}

// Append adds a layer at the end.
func (s *Sequential) Append(l Layer) { s.layers = append(s.layers, l) }

// Len returns the number of layers.
func (s *Sequential) Len() int { return len(s.layers) }

// At returns layer i.
func (s *Sequential) At(i int) Layer { return s.layers[i] }

// Forward runs the layers in order.
func (s *Sequential) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(s, x, func(x *tensor.Tensor) *tensor.Tensor {
		for _, l := range s.layers {
			x = l.Forward(x)
		}
		return x
	})
}

// ContainerChildren returns the layers named "0", "1", ....
func (s *Sequential) ContainerChildren() []NamedModule {
	out := make([]NamedModule, len(s.layers))
	for i, l := range s.layers {
		out[i] = NamedModule{strconv.Itoa(i), l}
	}
	return out
}

// SetContainerChild replaces layer name; m must be a Layer.
func (s *Sequential) SetContainerChild(name string, m Module) error {
	i, err := listIndex("Sequential", name, len(s.layers))
	if err != nil {
		return err
	}
	l, ok := m.(Layer)
	if !ok {
		return fmt.Errorf("Sequential cannot hold %T: it has no Forward(*tensor.Tensor) *tensor.Tensor method (not an nn.Layer)", m)
	}
	s.layers[i] = l
	return nil
}

func listIndex(typ, name string, n int) (int, error) {
	i, err := strconv.Atoi(name)
	if err != nil || i < 0 || i >= n || strconv.Itoa(i) != name {
		return 0, fmt.Errorf("%s of length %d has no child %q", typ, n, name)
	}
	return i, nil
}

// ModuleList holds modules in a list, named "0", "1", ...
// (torch.nn.ModuleList). It has no Forward.
type ModuleList struct {
	Base
	mods []Module
}

// NewModuleList returns a ModuleList of ms.
func NewModuleList(ms ...Module) *ModuleList {
	return &ModuleList{mods: append([]Module(nil), ms...)}
}

// Append adds a module at the end.
func (l *ModuleList) Append(m Module) { l.mods = append(l.mods, m) }

// Len returns the number of modules.
func (l *ModuleList) Len() int { return len(l.mods) }

// At returns module i.
func (l *ModuleList) At(i int) Module { return l.mods[i] }

// ContainerChildren returns the modules named "0", "1", ....
func (l *ModuleList) ContainerChildren() []NamedModule {
	out := make([]NamedModule, len(l.mods))
	for i, m := range l.mods {
		out[i] = NamedModule{strconv.Itoa(i), m}
	}
	return out
}

// SetContainerChild replaces module name.
func (l *ModuleList) SetContainerChild(name string, m Module) error {
	i, err := listIndex("ModuleList", name, len(l.mods))
	if err != nil {
		return err
	}
	l.mods[i] = m
	return nil
}
