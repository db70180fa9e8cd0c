// Package exchange is how the shards of a stage's data passes
// (spec.parallelism.shards) meet: each computes the partial statistics of
// its units (package pipeline/shard), and Reduce hands every shard's
// partial, in index order, to a merge by the same fixed tree, so every
// process ends a round with the same statistics, bit for bit.
//
// Two exchanges implement the meeting point. Local runs every shard in
// this process (kompress run, a stage pod without an Indexed Job); Storage
// is one index of an Indexed Job of pods, which meet in object storage: a
// bulk-synchronous round per data pass, each index writing its partial
// once and waiting for the others'. Both go through the same encoding, so
// the in-process path with several shards exercises the bytes the pods
// exchange; one shard in this process skips it (its partial is the
// result).
package exchange
