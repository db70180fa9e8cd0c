package onnx

import "github.com/kompress/kompress/runner/onnx/onnxpb"

// FindAttr returns a node's attribute by name, or nil.
func FindAttr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// IntAttr reads an INT attribute, def when absent.
func IntAttr(n *onnxpb.NodeProto, name string, def int64) int64 {
	if a := FindAttr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

// FloatAttr reads a FLOAT attribute, def when absent.
func FloatAttr(n *onnxpb.NodeProto, name string, def float32) float32 {
	if a := FindAttr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

// IntsAttr reads an INTS attribute; ok is false when it is absent.
func IntsAttr(n *onnxpb.NodeProto, name string) (v []int64, ok bool) {
	if a := FindAttr(n, name); a != nil {
		return a.GetInts(), true
	}
	return nil, false
}

// StringAttr reads a STRING attribute, def when absent.
func StringAttr(n *onnxpb.NodeProto, name, def string) string {
	if a := FindAttr(n, name); a != nil {
		return string(a.GetS())
	}
	return def
}
