package quantize

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// Observe runs the prepared model on one feed (inputs by name) and
// updates the observers of every point it computes: calibration is one
// Observe per feed, so a dataset streams through without being held in
// memory. NaN or Inf in an observed value is an error naming the node and
// value (unless the observers were configured to skip them).
func (p *Prepared) Observe(ctx context.Context, feed map[string]*tensor.Tensor) error {
	if p.prog == nil {
		prog, err := exec.Compile(p.Model, exec.Options{Unoptimized: true})
		if err != nil {
			return fmt.Errorf("quantize: Observe: %w", err)
		}
		p.prog = prog
	}
	for _, in := range p.Model.Graph.Inputs {
		t, ok := feed[in.Name]
		if !ok {
			continue // Run reports missing inputs
		}
		for _, pt := range p.byValue[in] {
			if err := pt.Observer.Observe(t); err != nil {
				return fmt.Errorf("quantize: Observe: graph input %q: %w", in.Name, err)
			}
		}
		if e := p.eqOf[in]; e != nil {
			if err := e.obs.Observe(t); err != nil {
				return fmt.Errorf("quantize: Observe: graph input %q: %w", in.Name, err)
			}
		}
	}
	_, err := p.prog.RunWith(ctx, feed, exec.RunOptions{Observe: func(v *graph.Value, t *tensor.Tensor) error {
		for _, pt := range p.byValue[v] {
			if err := pt.Observer.Observe(t); err != nil {
				return err
			}
		}
		if e := p.eqOf[v]; e != nil {
			return e.obs.Observe(t)
		}
		return nil
	}})
	if err != nil {
		return fmt.Errorf("quantize: Observe: %w", err)
	}
	p.Feeds++
	return nil
}

// Calibrate observes every feed next yields until it returns nil, calling
// progress (if set) after each. It is Observe in a loop, for callers that
// stream a dataset.
func (p *Prepared) Calibrate(ctx context.Context, next func() (map[string]*tensor.Tensor, error), progress func(done int)) error {
	for done := 0; ; done++ {
		feed, err := next()
		if err != nil {
			return fmt.Errorf("quantize: Calibrate: feed %d: %w", done, err)
		}
		if feed == nil {
			return nil
		}
		if err := p.Observe(ctx, feed); err != nil {
			return err
		}
		if progress != nil {
			progress(done + 1)
		}
	}
}

// observers returns the distinct activation observers in point order.
func (p *Prepared) observers() []observer.Observer {
	var out []observer.Observer
	seen := map[observer.Observer]bool{}
	for _, pt := range p.Points {
		if !seen[pt.Observer] {
			seen[pt.Observer] = true
			out = append(out, pt.Observer)
		}
	}
	for _, e := range p.eq {
		out = append(out, e.obs)
	}
	return out
}

// Merge folds the calibration state of o, prepared from the same model
// with the same options, into p: shards calibrated separately (other
// goroutines, processes or machines) combine into one.
func (p *Prepared) Merge(o *Prepared) error {
	a, b := p.observers(), o.observers()
	if len(a) != len(b) {
		return fmt.Errorf("quantize: Merge: %d observers against %d: not prepared from the same model and options", len(a), len(b))
	}
	for i := range a {
		if err := a[i].Merge(b[i]); err != nil {
			return fmt.Errorf("quantize: Merge: observer of %s: %w", p.pointOf(a[i]), err)
		}
	}
	p.Feeds += o.Feeds
	return nil
}

func (p *Prepared) pointOf(o observer.Observer) string {
	for _, pt := range p.Points {
		if pt.Observer == o {
			return pt.Value.Name
		}
	}
	return "?"
}

// stateMagic starts a serialized calibration state.
const stateMagic = "QNTCAL1\n"

// MarshalBinary serializes the calibration state (the activation
// observers, in point order, and the feed count), for sharded
// calibration: UnmarshalBinary on a Prepared made from the same model and
// options restores it, and Merge combines states.
func (p *Prepared) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(stateMagic)
	obs := p.observers()
	binary.Write(&buf, binary.LittleEndian, uint64(p.Feeds))
	binary.Write(&buf, binary.LittleEndian, uint32(len(obs)))
	for _, o := range obs {
		b, err := o.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("quantize: observer of %s: %w", p.pointOf(o), err)
		}
		binary.Write(&buf, binary.LittleEndian, uint32(len(b)))
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary restores a state written by MarshalBinary into p's
// observers.
func (p *Prepared) UnmarshalBinary(data []byte) error {
	if !bytes.HasPrefix(data, []byte(stateMagic)) {
		return errors.New("quantize: not a calibration state (bad magic)")
	}
	r := bytes.NewReader(data[len(stateMagic):])
	var feeds uint64
	var n uint32
	if binary.Read(r, binary.LittleEndian, &feeds) != nil || binary.Read(r, binary.LittleEndian, &n) != nil {
		return errors.New("quantize: calibration state truncated")
	}
	obs := p.observers()
	if int(n) != len(obs) {
		return fmt.Errorf("quantize: calibration state holds %d observers, the prepared model has %d", n, len(obs))
	}
	for i, o := range obs {
		var l uint32
		if binary.Read(r, binary.LittleEndian, &l) != nil || int64(l) > int64(r.Len()) {
			return fmt.Errorf("quantize: calibration state truncated at observer %d", i)
		}
		b := make([]byte, l)
		r.Read(b)
		if err := o.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("quantize: observer of %s: %w", p.pointOf(o), err)
		}
	}
	if r.Len() != 0 {
		return fmt.Errorf("quantize: %d bytes after the calibration state", r.Len())
	}
	p.Feeds = int(feeds)
	return nil
}
