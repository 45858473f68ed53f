// Package pohpb is the Go code generated from proto/hold.proto (package poh):
// the HoldMetrics and HoldMetricsQuery services and their messages. Do not
// edit the *.pb.go files; change hold.proto and run `make proto`.
package pohpb
