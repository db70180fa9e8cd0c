package structured

// classes is a union-find over channel ids. Ids that are joined must be
// removed together or not at all; a class may be pinned (never removed),
// with the reason kept for the report.
type classes struct {
	parent []int32
	// pin is the reason a class cannot be removed, at its root; "" when
	// it can.
	pin []string
}

// add makes n new ids, each its own class, pinned with reason when reason
// is not empty.
func (c *classes) add(n int, reason string) []int32 {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(len(c.parent))
		c.parent = append(c.parent, ids[i])
		c.pin = append(c.pin, reason)
	}
	return ids
}

func (c *classes) find(id int32) int32 {
	for c.parent[id] != id {
		c.parent[id] = c.parent[c.parent[id]] // path halving
		id = c.parent[id]
	}
	return id
}

// union joins the classes of a and b. A pin on either side pins the union.
func (c *classes) union(a, b int32) {
	ra, rb := c.find(a), c.find(b)
	if ra == rb {
		return
	}
	c.parent[rb] = ra
	if c.pin[ra] == "" {
		c.pin[ra] = c.pin[rb]
	}
}

// pinned returns why id's class cannot be removed ("" when it can).
func (c *classes) pinned(id int32) string { return c.pin[c.find(id)] }

// pinAll pins the classes of ids, keeping an earlier reason where there is
// one.
func (c *classes) pinAll(ids []int32, reason string) {
	for _, id := range ids {
		if r := c.find(id); c.pin[r] == "" {
			c.pin[r] = reason
		}
	}
}

// layout says which axis of a tensor carries tracked channels and which
// channel lies at each position. Along that axis, channel ids[i] occupies
// the block consecutive positions starting at i*block: block is 1 for a
// Conv output and H*W once a [N,C,H,W] activation is flattened to
// [N,C*H*W].
type layout struct {
	axis  int
	ids   []int32
	block int
}

// size is the length of the channel axis.
func (l *layout) size() int { return len(l.ids) * l.block }

// withAxis is l with the channels along another axis (same ids).
func (l *layout) withAxis(axis int) *layout {
	if axis == l.axis {
		return l
	}
	return &layout{axis: axis, ids: l.ids, block: l.block}
}
