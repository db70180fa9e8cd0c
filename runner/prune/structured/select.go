package structured

import (
	"math"
	"math/rand/v2"
	"sort"
)

// class is one set of coupled channels: the unit that is kept or removed.
type class struct {
	root  int32
	score float64
	// norm is score divided by the mean score of the group's classes,
	// comparable across groups (ScopeGlobal).
	norm    float64
	tie     uint64
	pin     string
	group   int
	removed bool
	// sources lists the source indices with a channel in the class.
	sources []int
}

// plan is the outcome of selection.
type plan struct {
	classes map[int32]*class
	// groups holds source indices, one slice per group of coupled layers.
	groups [][]int
	// groupClasses holds each group's classes in order of appearance;
	// order all classes.
	groupClasses [][]*class
	order        []*class
}

func (p *plan) removed(c *classes, id int32) bool {
	k := p.classes[c.find(id)]
	return k != nil && k.removed
}

// decide groups the sources that share classes, scores each class by the
// sum of its channels' scores, and marks the lowest-scoring free classes
// removed: opts.Fraction of each group (ScopeLayer) or of all channels
// (ScopeGlobal). Every group and every layer keeps at least one channel.
// ScopeSensitivity is decided by allocate.
func (a *analysis) decide(scores [][]float64) *plan {
	p := a.classify(scores)
	if a.opts.Scope == ScopeGlobal {
		a.removeGlobal(p)
	} else {
		for _, ks := range p.groupClasses {
			removeLowest(ks, int(math.Round(a.opts.Fraction*float64(len(ks)))))
		}
	}
	a.keepOnePerLayer(p)
	return p
}

// decideCounts removes counts[g] classes of each group g.
func (a *analysis) decideCounts(scores [][]float64, counts []int) *plan {
	p := a.classify(scores)
	for g, ks := range p.groupClasses {
		removeLowest(ks, counts[g])
	}
	a.keepOnePerLayer(p)
	return p
}

// classify builds the classes and groups with their scores; nothing is
// removed yet.
func (a *analysis) classify(scores [][]float64) *plan {
	p := &plan{classes: map[int32]*class{}}
	rng := rand.New(rand.NewPCG(uint64(a.opts.Seed), 0x5eed))
	srcUF := make([]int, len(a.sources))
	for i := range srcUF {
		srcUF[i] = i
	}
	find := func(i int) int {
		for srcUF[i] != i {
			srcUF[i] = srcUF[srcUF[i]]
			i = srcUF[i]
		}
		return i
	}
	for si, s := range a.sources {
		for c, id := range s.ids {
			r := a.cls.find(id)
			k := p.classes[r]
			if k == nil {
				k = &class{root: r, tie: rng.Uint64(), pin: a.cls.pin[r]}
				p.classes[r] = k
				p.order = append(p.order, k)
			}
			k.score += scores[si][c]
			if len(k.sources) == 0 || k.sources[len(k.sources)-1] != si {
				k.sources = append(k.sources, si)
			}
			srcUF[find(si)] = find(k.sources[0])
		}
	}
	groupOf := map[int]int{}
	for si := range a.sources {
		r := find(si)
		g, ok := groupOf[r]
		if !ok {
			g = len(p.groups)
			groupOf[r] = g
			p.groups = append(p.groups, nil)
			p.groupClasses = append(p.groupClasses, nil)
		}
		p.groups[g] = append(p.groups[g], si)
	}
	for _, k := range p.order {
		k.group = groupOf[find(k.sources[0])]
		p.groupClasses[k.group] = append(p.groupClasses[k.group], k)
	}
	for _, ks := range p.groupClasses {
		if a.opts.Criterion == Reconstruction {
			for _, k := range ks {
				k.norm = k.score // shares of output variance: comparable as they are
			}
			continue
		}
		mean := 0.0
		for _, k := range ks {
			mean += k.score
		}
		mean /= float64(len(ks))
		for _, k := range ks {
			k.norm = k.score
			if mean > 0 {
				k.norm = k.score / mean
			}
		}
	}
	return p
}

// ranked returns the free classes of ks, lowest score first (ties in seed
// order).
func ranked(ks []*class, key func(*class) float64) []*class {
	var free []*class
	for _, k := range ks {
		if k.pin == "" {
			free = append(free, k)
		}
	}
	if key == nil {
		return free
	}
	sort.SliceStable(free, func(i, j int) bool {
		if ki, kj := key(free[i]), key(free[j]); ki != kj {
			return ki < kj
		}
		return free[i].tie < free[j].tie
	})
	return free
}

// budget is how many classes ScopeLayer removes: round(Fraction x
// classes) of each group, within its free classes, leaving one.
func (a *analysis) budget(p *plan) int {
	n := 0
	for _, ks := range p.groupClasses {
		n += min(int(math.Round(a.opts.Fraction*float64(len(ks)))), len(ranked(ks, nil)), len(ks)-1)
	}
	return n
}

// removeLowest removes the n lowest-scoring free classes of a group,
// leaving at least one class.
func removeLowest(ks []*class, n int) {
	free := ranked(ks, func(k *class) float64 { return k.score })
	n = min(n, len(free), len(ks)-1)
	for _, k := range free[:max(n, 0)] {
		k.removed = true
	}
}

// removeGlobal removes as many classes as ScopeLayer would, chosen over
// all groups by normalized score, no group past MaxGroupFraction or its
// last class.
func (a *analysis) removeGlobal(p *plan) {
	budget := a.budget(p)
	caps := make([]int, len(p.groupClasses))
	for g, ks := range p.groupClasses {
		caps[g] = min(int(math.Floor(a.opts.MaxGroupFraction*float64(len(ks)))), len(ks)-1)
	}
	for _, k := range ranked(p.order, func(k *class) float64 { return k.norm }) {
		if budget == 0 {
			break
		}
		if caps[k.group] > 0 {
			k.removed = true
			caps[k.group]--
			budget--
		}
	}
}

// keepOnePerLayer restores, for a layer that would lose every channel
// (its classes removed through coupling with other layers), its
// best-scoring class.
func (a *analysis) keepOnePerLayer(p *plan) {
	for _, s := range a.sources {
		var best *class
		for _, id := range s.ids {
			k := p.classes[a.cls.find(id)]
			if !k.removed {
				best = nil
				break
			}
			if best == nil || k.score > best.score {
				best = k
			}
		}
		if best != nil {
			best.removed = false
		}
	}
}
