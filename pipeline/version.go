package pipeline

// Version of the runner and manager, set at build time with
// -ldflags "-X github.com/kompress/kompress/pipeline.Version=v0.1.0".
// It is part of every cache key: a new runner recomputes rather than
// trusting artifacts an older one wrote.
var Version = "v0.1.0-dev"
