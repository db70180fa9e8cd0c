package structured

// Report says what Prune removed, and what it left and why.
type Report struct {
	Criterion Criterion
	Scope     Scope
	Fraction  float64
	// Samples is how many calibration samples scored the channels
	// (Entropy only).
	Samples int

	// Layers lists every layer whose output channels could be removed, in
	// graph order.
	Layers []Layer
	// Groups lists the sets of layers whose channels are coupled.
	Groups []Group
	// Protected lists tensors whose channels were kept whole, and why.
	Protected []Protection

	// ChannelsBefore and ChannelsAfter count the output channels of
	// Layers; ParamsBefore and ParamsAfter the floating-point weights of
	// the model.
	ChannelsBefore, ChannelsAfter int
	ParamsBefore, ParamsAfter     int64
	// Cosine is the pruned model's fidelity to the source: the cosine
	// similarity of their outputs (the lowest over outputs, averaged over
	// the first calibration samples, or on the probe inputs).
	Cosine float64
}

// Layer is one Conv, ConvTranspose, Gemm or MatMul whose output channels
// are candidates.
type Layer struct {
	Node   string
	OpType string
	// Group is the index in Report.Groups of the layer's group.
	Group    int
	Channels int
	Kept     int
	// Removed holds the original indices of the removed channels,
	// ascending.
	Removed []int
	// Protected is why some channels could not be removed ("" when all
	// could).
	Protected string
}

// Group is a set of layers whose channels are coupled: removing a channel
// of one removes the matching channels of the others.
type Group struct {
	Layers []string
	// Channels counts the group's classes of coupled channels; Removed
	// how many went; Protected how many could not.
	Channels  int
	Removed   int
	Protected int
	// Sensitivity is the group's measured curve (ScopeSensitivity).
	Sensitivity []Point
}

// Point is the loss of fidelity (1 - cosine of the outputs) when a group
// alone loses Removed classes of channels.
type Point struct {
	Removed int
	Loss    float64
}

// Protection is a tensor whose channels were all kept.
type Protection struct {
	Tensor string
	Reason string
}
