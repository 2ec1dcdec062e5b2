#!/usr/bin/env bash
# Builds decoder-fuzzer with libFuzzer (-sanitize=fuzzer) and runs it.
#
#   scripts/fuzz.sh [SECONDS] [CORPUS_DIR]     (defaults: 300 s, .build-fuzz/corpus)
#
# SwiftPM cannot link a libFuzzer executable (its entry-point renaming clashes with libFuzzer's
# main), so the core modules are compiled here with swiftc, instrumented, in dependency order.
# A crash is written as crash-* in the current directory; replay it with
# `swift run decoder-fuzzer crash-…`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
corpus=${2:-.build-fuzz/corpus}
out=.build-fuzz/manual
mkdir -p "$out" "$corpus"
flags=(-O -parse-as-library -sanitize=fuzzer -I "$out")
for module in Primitives RaftCore StateMachine LeaseClock Storage ReplicatedMember; do
    swiftc "${flags[@]}" -wmo -module-name "$module" -emit-module -emit-module-path "$out/$module.swiftmodule" \
        -c Sources/"$module"/*.swift -o "$out/$module.o"
done
swiftc "${flags[@]}" -D FUZZING -module-name DecoderFuzzer Tests/Fuzz/decoder-fuzzer/DecoderFuzzer.swift \
    "$out"/{Primitives,RaftCore,StateMachine,LeaseClock,Storage,ReplicatedMember}.o -o "$out/decoder-fuzzer"
# Seed the corpus with the inputs the replay test uses.
cp -n Tests/Fuzz/corpus/* "$corpus"/ 2>/dev/null || true
"$out/decoder-fuzzer" "$corpus" -max_total_time="$seconds" -max_len=8192
