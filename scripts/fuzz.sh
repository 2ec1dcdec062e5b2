#!/usr/bin/env bash
# Builds decoder-fuzzer with libFuzzer (-sanitize=fuzzer) and runs each of its targets.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (defaults: 300 s per target, every target)
#
# Targets: decoders, grpc-framing, etcd-requests, peer-frames, raft-messages, snapshots,
# stored-records (Tests/Fuzz/decoder-fuzzer/FuzzTargets.swift). Each grows its own corpus in
# .build-fuzz/corpus/TARGET, seeded from Tests/Fuzz/corpus/TARGET; the executions per second
# and the corpus size are printed at the end. A crash is written as crash-* in the current
# directory; replay it with `swift run decoder-fuzzer --target TARGET crash-…`, then add it to
# the committed corpus once fixed.
#
# SwiftPM cannot link a libFuzzer executable (its entry-point renaming clashes with libFuzzer's
# main), so the modules are compiled here with swiftc, instrumented, in dependency order. The
# peer frames live in StatehouseServer and the hello in PeerTransport, whose NIO dependencies are
# not built here: PeerFrame.swift, ServiceError.swift and PeerHello.swift are compiled into the
# fuzzer itself.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(decoders grpc-framing etcd-requests peer-frames raft-messages snapshots stored-records)
fi
out=.build-fuzz/manual
mkdir -p "$out"
flags=(-O -parse-as-library -I "$out")
protobuf=$(find .build/checkouts/swift-protobuf/Sources/SwiftProtobuf -name '*.swift' 2>/dev/null || true)
if [ -z "$protobuf" ]; then
    echo "fuzz.sh: swift-protobuf is not checked out; run 'swift package resolve' first" >&2
    exit 1
fi
# SwiftProtobuf itself is not instrumented: the fuzzing effort goes to our code.
if [ ! -f "$out/SwiftProtobuf.o" ]; then
    # shellcheck disable=SC2086
    swiftc "${flags[@]}" -wmo -package-name swift_protobuf -module-name SwiftProtobuf -emit-module -emit-module-path "$out/SwiftProtobuf.swiftmodule" \
        -c $protobuf -o "$out/SwiftProtobuf.o"
fi
# Primitives imports CCRC32C, a C target (the processor's CRC-32C instruction): compiled here
# with clang, its header reached through a module map written next to the objects.
mkdir -p "$out/CCRC32C"
cp Sources/CCRC32C/include/crc32c_hardware.h "$out/CCRC32C/"
printf 'module CCRC32C {\n    header "crc32c_hardware.h"\n    export *\n}\n' >"$out/CCRC32C/module.modulemap"
clang -O2 -fPIC -I Sources/CCRC32C/include -c Sources/CCRC32C/crc32c_hardware.c -o "$out/CCRC32C.o"
flags+=(-I "$out/CCRC32C")
modules=(Primitives RaftCore StateMachine LeaseClock Storage ReplicatedMember GRPCStatus GRPCFraming EtcdWire EtcdMapping)
for module in "${modules[@]}"; do
    swiftc "${flags[@]}" -sanitize=fuzzer -enable-testing -wmo -module-name "$module" -emit-module \
        -emit-module-path "$out/$module.swiftmodule" -c Sources/"$module"/*.swift -o "$out/$module.o"
done
objects=("$out/CCRC32C.o")
for module in SwiftProtobuf "${modules[@]}"; do objects+=("$out/$module.o"); done
swiftc "${flags[@]}" -sanitize=fuzzer -D FUZZING -module-name DecoderFuzzer Tests/Fuzz/decoder-fuzzer/*.swift \
    Sources/PeerTransport/PeerHello.swift Sources/StatehouseServer/PeerFrame.swift Sources/StatehouseServer/ServiceError.swift "${objects[@]}" -o "$out/decoder-fuzzer"

summary=()
for target in "${targets[@]}"; do
    corpus=.build-fuzz/corpus/$target
    mkdir -p "$corpus"
    cp -n Tests/Fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
    log=.build-fuzz/$target.log
    echo "== $target: ${seconds}s"
    FUZZ_TARGET=$target "$out/decoder-fuzzer" "$corpus" -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 2>&1 |
        tee "$log" | grep -E "^#[0-9]+ +(DONE|INITED)|ERROR|crash-|stat::" || true
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    summary+=("$target: ${executions:-?} executions (${rate:-?}/s), corpus $(find "$corpus" -type f | wc -l) inputs")
    if grep -q "ERROR: libFuzzer\|SUMMARY: libFuzzer\|Fatal error" "$log"; then
        printf '%s\n' "${summary[@]}"
        echo "fuzz.sh: $target found a crash; see $log" >&2
        exit 1
    fi
done
printf '%s\n' "${summary[@]}"
