package nn

import (
	"fmt"
	"math"
)

// LRScheduler adjusts an optimizer's learning rate once per epoch
// (torch.optim.lr_scheduler). Constructing one sets the epoch-0 rate; call
// Step after each epoch's optimizer steps.
type LRScheduler interface {
	// Step advances one epoch and sets the optimizer's learning rate.
	Step()
	// LastEpoch returns the current epoch (0 after construction).
	LastEpoch() int
	// LastLR returns the learning rate set by the last Step.
	LastLR() float64
}

// StepLR multiplies the learning rate by Gamma every StepSize epochs:
// lr = base_lr * gamma^floor(epoch/step_size) (torch's closed form).
type StepLR struct {
	opt      Optimizer
	baseLR   float64
	stepSize int
	gamma    float64
	epoch    int
}

// NewStepLR returns a StepLR over opt, whose current learning rate is the
// base rate.
func NewStepLR(opt Optimizer, stepSize int, gamma float64) (*StepLR, error) {
	if opt == nil {
		return nil, fmt.Errorf("nn: NewStepLR: nil optimizer")
	}
	if stepSize <= 0 {
		return nil, fmt.Errorf("nn: NewStepLR: step size %d must be positive", stepSize)
	}
	s := &StepLR{opt: opt, baseLR: opt.LR(), stepSize: stepSize, gamma: gamma}
	opt.SetLR(s.lrAt(0))
	return s, nil
}

func (s *StepLR) lrAt(epoch int) float64 {
	return s.baseLR * math.Pow(s.gamma, float64(epoch/s.stepSize))
}

// Step advances one epoch.
func (s *StepLR) Step() { s.epoch++; s.opt.SetLR(s.lrAt(s.epoch)) }

// LastEpoch returns the current epoch.
func (s *StepLR) LastEpoch() int { return s.epoch }

// LastLR returns the current learning rate.
func (s *StepLR) LastLR() float64 { return s.lrAt(s.epoch) }

// CosineAnnealingLR anneals the learning rate along a cosine from the base
// rate to EtaMin over TMax epochs, with torch's closed form
// lr = eta_min + (base_lr - eta_min)*(1 + cos(pi*epoch/T_max))/2 (which
// rises again after T_max, like the closed form in PyTorch).
type CosineAnnealingLR struct {
	opt    Optimizer
	baseLR float64
	tMax   int
	etaMin float64
	epoch  int
}

// NewCosineAnnealingLR returns a CosineAnnealingLR over opt.
func NewCosineAnnealingLR(opt Optimizer, tMax int, etaMin float64) (*CosineAnnealingLR, error) {
	if opt == nil {
		return nil, fmt.Errorf("nn: NewCosineAnnealingLR: nil optimizer")
	}
	if tMax <= 0 {
		return nil, fmt.Errorf("nn: NewCosineAnnealingLR: T_max %d must be positive", tMax)
	}
	s := &CosineAnnealingLR{opt: opt, baseLR: opt.LR(), tMax: tMax, etaMin: etaMin}
	opt.SetLR(s.lrAt(0))
	return s, nil
}

func (s *CosineAnnealingLR) lrAt(epoch int) float64 {
	return s.etaMin + (s.baseLR-s.etaMin)*(1+math.Cos(math.Pi*float64(epoch)/float64(s.tMax)))/2
}

// Step advances one epoch.
func (s *CosineAnnealingLR) Step() { s.epoch++; s.opt.SetLR(s.lrAt(s.epoch)) }

// LastEpoch returns the current epoch.
func (s *CosineAnnealingLR) LastEpoch() int { return s.epoch }

// LastLR returns the current learning rate.
func (s *CosineAnnealingLR) LastLR() float64 { return s.lrAt(s.epoch) }
