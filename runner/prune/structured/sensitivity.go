package structured

import (
	"context"
	"math"
)

// sensitivityLevels are the shares of a group's channels whose removal
// the sensitivity analysis measures.
var sensitivityLevels = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}

// stopLoss ends a group's analysis: past this loss of fidelity, larger
// shares would never be chosen.
const stopLoss = 0.2

// curve is a group's sensitivity: the loss of fidelity (1 - cosine) when
// the group alone loses counts[i] classes.
type curve struct {
	counts []int
	loss   []float64
}

// allocate decides ScopeSensitivity: it measures every group's curve,
// then spends the budget ScopeLayer would remove where it costs the least
// fidelity.
func (pr *pruning) allocate(ctx context.Context, scores [][]float64, means map[string][]float64) (*plan, []curve, error) {
	base := pr.a.classify(scores)
	curves := make([]curve, len(base.groups))
	for g, ks := range base.groupClasses {
		free := 0
		for _, k := range ks {
			if k.pin == "" {
				free++
			}
		}
		most := min(free, len(ks)-1)
		worst := 0.0
		for _, l := range sensitivityLevels {
			n := min(int(math.Round(l*float64(len(ks)))), most)
			if n == 0 || (len(curves[g].counts) > 0 && n <= curves[g].counts[len(curves[g].counts)-1]) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			counts := make([]int, len(base.groups))
			counts[g] = n
			fid, err := pr.trial(scores, means, counts)
			if err != nil {
				return nil, nil, err
			}
			if pr.opts.Progress != nil {
				pr.opts.Progress(g+1, len(base.groups))
			}
			worst = math.Max(worst, 1-fid) // more removed never counts as better
			curves[g].counts = append(curves[g].counts, n)
			curves[g].loss = append(curves[g].loss, worst)
			if worst > stopLoss {
				break
			}
		}
	}
	counts := chooseCounts(curves, pr.a.budget(base))
	return pr.a.decideCounts(scores, counts), curves, nil
}

// chooseCounts spends the target on the cheapest removals: starting from
// nothing removed, it repeatedly moves the group whose next measured share
// (any larger one, so a flat stretch after a step counts) costs the least
// fidelity per class removed, as if the groups' losses added up. The last
// move stops at the target.
func chooseCounts(curves []curve, target int) []int {
	counts := make([]int, len(curves))
	at := make([]int, len(curves)) // index of the share reached, -1 for none
	loss := make([]float64, len(curves))
	for g := range at {
		at[g] = -1
	}
	sum := 0
	for sum < target {
		bestG, bestJ, bestRate := -1, -1, math.Inf(1)
		for g, c := range curves {
			for j := at[g] + 1; j < len(c.counts); j++ {
				rate := (c.loss[j] - loss[g]) / float64(c.counts[j]-counts[g])
				if rate < bestRate {
					bestG, bestJ, bestRate = g, j, rate
				}
			}
		}
		if bestG < 0 {
			break // every group is at its largest measured share
		}
		c := curves[bestG]
		add := min(c.counts[bestJ]-counts[bestG], target-sum)
		counts[bestG] += add
		sum += add
		at[bestG], loss[bestG] = bestJ, c.loss[bestJ]
	}
	return counts
}

// trial prunes a fresh copy of the model with counts[g] classes removed
// from group g and returns its fidelity.
func (pr *pruning) trial(scores [][]float64, means map[string][]float64, counts []int) (float64, error) {
	a := pr.analyze()
	p := a.decideCounts(scores, counts)
	if err := a.compensate(p, means); err != nil {
		return 0, err
	}
	if err := a.apply(p); err != nil {
		return 0, err
	}
	return pr.fidelity(a.m)
}
