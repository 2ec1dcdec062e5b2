// EtcdWire: SwiftProtobuf messages for etcd 3.4's v3 API (packages mvccpb,
// authpb, etcdserverpb, v3lockpb, v3electionpb).
//
// The *.pb.swift files next to this one are generated from Protos/ by
// scripts/generate-protos.sh; do not edit them by hand. This file is
// hand-written and keeps the target non-empty so SwiftPM can load the
// package (and build protoc-gen-swift) before any code has been generated.
