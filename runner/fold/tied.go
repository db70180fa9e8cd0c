package fold

// tied is an initializer the chain reads that nodes outside the chain
// read too, or "".
func (x *model) tied(c chain) string {
	in := map[string]int{} // reads of each initializer by the chain
	for _, n := range c.nodes {
		for _, t := range n.GetInput() {
			if w := x.consts[t]; w != nil && w.Node == nil {
				in[t]++
			}
		}
	}
	for t, k := range in {
		if x.reads(t) > k {
			return t
		}
	}
	return ""
}

// reads counts the node inputs of every graph that read the tensor name.
func (x *model) reads(name string) int {
	k := 0
	for n := range x.graphOf {
		for _, t := range n.GetInput() {
			if t == name {
				k++
			}
		}
	}
	return k
}
