#!/usr/bin/env bash
# Regenerate the SwiftProtobuf message code in Sources/EtcdWire from Protos/.
#
# Requirements:
#   - protoc (Debian: apt-get install protobuf-compiler)
#   - the repo's Package.swift must depend on apple/swift-protobuf (1.39.0);
#     protoc-gen-swift is built from that dependency into .build-protoc/.
#
# Only message code is generated (protoc-gen-swift emits no service code).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROTO_DIR="Protos"
OUT_DIR="Sources/EtcdWire"
SCRATCH=".build-protoc"
PLUGIN="${PROTOC_GEN_SWIFT:-}"

if ! command -v protoc >/dev/null 2>&1; then
  echo "error: protoc not found (apt-get install protobuf-compiler)" >&2
  exit 1
fi

if [[ -z "$PLUGIN" ]]; then
  PLUGIN="$SCRATCH/release/protoc-gen-swift"
  if [[ ! -x "$PLUGIN" ]]; then
    echo "building protoc-gen-swift into $SCRATCH ..." >&2
    swift build -c release \
      --package-path "$ROOT" \
      --scratch-path "$SCRATCH" \
      --product protoc-gen-swift
  fi
fi

mapfile -t PROTOS < <(cd "$PROTO_DIR" && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
if [[ ${#PROTOS[@]} -eq 0 ]]; then
  echo "error: no .proto files under $PROTO_DIR" >&2
  exit 1
fi

mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/*.pb.swift

protoc \
  --plugin=protoc-gen-swift="$PLUGIN" \
  --proto_path="$PROTO_DIR" \
  --swift_out="$OUT_DIR" \
  --swift_opt=Visibility=Public \
  --swift_opt=FileNaming=PathToUnderscores \
  "${PROTOS[@]}"

echo "generated:" >&2
ls -1 "$OUT_DIR"/*.pb.swift >&2
