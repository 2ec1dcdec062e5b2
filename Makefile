# Statehouse: the two commands a fresh machine needs are `make run` and `make test`.
SWIFT ?= swift
SEEDS ?= 1..5000

.PHONY: all deps build test sim bench run lint format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build

# Lint, build (tests included), then run every test: unit tests, scenario tests and the
# simulator's seed sweeps.
test: deps lint
	$(SWIFT) build --build-tests
	$(SWIFT) test

# A longer seed sweep in an optimized build: make sim SEEDS=1..20000
sim: deps
	$(SWIFT) build -c release --product simulate
	.build/release/simulate --seeds $(SEEDS)

# The state machine alone applying puts to RocksDB, one synced batch per Raft batch.
bench: deps
	$(SWIFT) build -c release --product statehouse-bench-apply
	.build/release/statehouse-bench-apply

# Until the server exists, `make run` runs the simulator's default campaign.
run: deps
	$(SWIFT) build -c release --product simulate
	.build/release/simulate --seeds 1..200 --verbose

lint:
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests Simulation

format:
	$(SWIFT) format --in-place --recursive Package.swift Sources Tests Simulation

clean:
	rm -rf .build
