package qdyn

import "github.com/quanta-go/quanta/internal/cpu"

func hardware() cpu.Level          { return cpu.Hardware }
func setMax(l cpu.Level) cpu.Level { return cpu.SetMax(l) }
