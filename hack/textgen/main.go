// Command textgen renders the text lines PaddleOCR's recognizer
// (testdata/models/ppocr-rec) is evaluated on: each line of text drawn
// in Go's built-in 7x13 bitmap font (golang.org/x/image/font/basicfont)
// scaled three times, dark on a light background, on a 48 x 320 RGB
// canvas, normalized as PaddleOCR does ((pixel/255 - 0.5) / 0.5). The
// .npz holds x float32 [N, 3, 48, 320], the array a single-input model
// takes.
//
//	go run ./hack/textgen -out testdata/models/ppocr-rec/lines.npz
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/kompress/kompress/runner/dataset"
)

const (
	height, width = 48, 320
	scale         = 3
)

// lines are short enough to fit 320 pixels at 21 pixels a character.
var lines = []string{
	"kompress 2026",
	"ONNX Runtime",
	"hello world",
	"int8 static QDQ",
	"prune 50% LAMP",
	"MobileNet v3",
	"speech 16 kHz",
	"Go 1.26 amd64",
}

func main() {
	out := flag.String("out", "", "the .npz file to write")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "textgen: -out is required")
		os.Exit(1)
	}
	x := make([]float32, 0, len(lines)*3*height*width)
	for i, text := range lines {
		x = append(x, render(text, uint8(230-10*(i%3)), uint8(20+15*(i%4)))...)
	}
	if err := dataset.WriteNPZFile(*out, dataset.Array{Name: "x", Shape: []int{len(lines), 3, height, width}, Data: x}); err != nil {
		fmt.Fprintln(os.Stderr, "textgen:", err)
		os.Exit(1)
	}
}

// render draws text in ink on paper and returns it as CHW floats in
// [-1, 1].
func render(text string, paper, ink uint8) []float32 {
	small := image.NewGray(image.Rect(0, 0, width/scale+1, height/scale+1))
	draw.Draw(small, small.Bounds(), image.NewUniform(color.Gray{paper}), image.Point{}, draw.Src)
	d := font.Drawer{Dst: small, Src: image.NewUniform(color.Gray{ink}), Face: basicfont.Face7x13,
		Dot: fixed.P(2, 12)}
	d.DrawString(text)
	chw := make([]float32, 3*height*width)
	for y := range height {
		for x := range width {
			v := (float32(small.GrayAt(x/scale, y/scale).Y)/255 - 0.5) / 0.5
			for c := range 3 {
				chw[c*height*width+y*width+x] = v
			}
		}
	}
	return chw
}
