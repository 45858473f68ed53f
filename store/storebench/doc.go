// Package storebench compares the ingest throughput of holdmetricsd's
// stores in one run (go test -bench . ./store/storebench): the embedded
// log, MongoDB (FerretDB embedded in the test binary), and each with the
// immudb audit. It has no code outside its benchmark.
package storebench
