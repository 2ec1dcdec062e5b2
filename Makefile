# Statehouse: the two commands a fresh machine needs are `make run` and `make test`.
SWIFT ?= swift
SEEDS ?= 1..5000

.PHONY: all deps build test sim fuzz bench bench-cluster bench-rolling bench-failover bench-availability bench-scale chaos run lint format protos docs clean

# Hand-written Swift sources (generated protobuf code is left as protoc-gen-swift writes it).
SWIFT_SOURCES = Package.swift $(shell find Sources Tests Simulation -name '*.swift' ! -name '*.pb.swift')

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build

# Lint, build (tests included), then run every test: unit tests, scenario tests and the
# simulator's seed sweeps; then seeds 1..20 replayed in a debug and two release processes
# (identical trace hashes), and a short real-process chaos run.
test: deps lint
	$(SWIFT) build --build-tests
	$(SWIFT) test
	$(SWIFT) build -c release --product simulate
	bash scripts/replay.sh .build/debug/simulate .build/release/simulate 1..20
	bash scripts/chaos.sh .build/debug/statehouse .build/debug/check-history 20s

# A longer seed sweep in an optimized build: make sim SEEDS=1..20000
sim: deps
	$(SWIFT) build -c release --product simulate
	.build/release/simulate --seeds $(SEEDS)

# libFuzzer on every decoder of received or stored bytes, each target FUZZ_SECONDS:
# make fuzz FUZZ_SECONDS=600 [FUZZ_TARGETS="grpc-framing peer-frames"]
FUZZ_SECONDS ?= 300
fuzz: deps
	bash scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The state machine alone applying puts to RocksDB, one synced batch per Raft batch.
bench: deps
	$(SWIFT) build -c release --product statehouse-bench-apply
	.build/release/statehouse-bench-apply

# Statehouse against etcd 3.4, both three members on loopback, with the same load generators
# (needs ../shared/bench, h2load and etcd; see scripts/bench-cluster.sh).
bench-cluster: deps
	$(SWIFT) build -c release --product statehouse
	bash scripts/bench-cluster.sh

# The rolling-restart drill: 64 etcd Go clients put while each member in turn gets SIGTERM and
# is restarted; prints the failed puts (needs ../shared/bench for kvbench).
bench-rolling: deps
	$(SWIFT) build -c release --product statehouse
	bash scripts/rolling-restart.sh .build/release/statehouse

# The crash drill: 16 etcd Go clients put while the leader is killed with SIGKILL (and restarted)
# FAILOVER_KILLS times; prints the longest write gap per kill and overall, for Statehouse and
# then etcd 3.4 (Go and etcd from Debian; see scripts/failover-gap.sh).
FAILOVER_KILLS ?= 10
bench-failover: deps
	$(SWIFT) build -c release --product statehouse
	bash scripts/failover-gap.sh .build/release/statehouse $(FAILOVER_KILLS)

# The real-process nemesis: three members under etcd Go clients while kill -9, SIGSTOP and peer
# partitions hit them, then a linearizability check and a read-back of every acknowledged
# write (scripts/chaos.sh): make chaos DURATION=10m
DURATION ?= 60s
chaos: deps
	$(SWIFT) build -c release --product statehouse
	$(SWIFT) build -c release --product check-history
	bash scripts/chaos.sh .build/release/statehouse .build/release/check-history $(DURATION)

# Issue 12's availability drill against etcd 3.4 and Statehouse (40 kill -9 and restarts, 4 s
# apart, under 8 workers on 3 keys): operations and unknown outcomes side by side. Quiet machine.
bench-availability: deps
	$(SWIFT) build -c release --product statehouse
	$(SWIFT) build -c release --product check-history
	bash scripts/bench-availability.sh .build/release/statehouse .build/release/check-history

# Issue 10's scale benchmark against etcd 3.4, each cluster alone: 1,000,000 keys × 1 KiB
# (RssAnon per member), a follower's kill -9 and restart to a linearizable read, 200,000 puts at
# 256 clients, and snapshot save, hashkv and an unread watch under 64 clients (leader changes,
# memory); see scripts/bench-scale.sh. make bench-scale SCALE_KEYS=300000. Quiet machine, ~8 GB disk.
bench-scale: deps
	$(SWIFT) build -c release --product statehouse
	bash scripts/bench-scale.sh .build/release/statehouse

# Builds the server and starts a three-member cluster on loopback (client ports 2379, 22379,
# 32379); Ctrl-C stops all three.
run: deps
	$(SWIFT) build -c release --product statehouse
	bash deploy/local/cluster.sh .build/release/statehouse ./local-cluster

lint:
	@echo "swift format lint --strict (hand-written sources)"
	@$(SWIFT) format lint --strict $(SWIFT_SOURCES)

format:
	@$(SWIFT) format --in-place $(SWIFT_SOURCES)

# DocC documentation of the client and workflow libraries (swift-docc-plugin), as static sites
# in .build/docs/StatehouseClient and .build/docs/StatehouseWorkflow.
DOC_TARGETS = StatehouseClient StatehouseWorkflow
docs: deps
	@mkdir -p .build/docs
	@for target in $(DOC_TARGETS); do \
		$(SWIFT) package --allow-writing-to-directory .build/docs generate-documentation --target $$target \
			--output-path .build/docs/$$target --transform-for-static-hosting --warnings-as-errors || exit 1; \
	done

# Regenerates Sources/EtcdWire from Protos/ (needs protoc: apt-get install protobuf-compiler).
protos:
	bash scripts/generate-protos.sh

clean:
	rm -rf .build
