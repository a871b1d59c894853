#!/usr/bin/env bash
# Backup and restore throughput to object storage vs a local folder: Azurite (Azure Blob,
# in memory) and moto (S3) on loopback, and Azurite behind bench/latency-proxy.py, which
# delays every request by LATENCY_MS (default 30) as a distant endpoint would. Same data,
# one run. Usage: bench/object-store.sh [MiB, default 512]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
MIB=${1:-512}
LATENCY_MS=${LATENCY_MS:-30}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rehydra/target}
[ -n "${BIN:-}" ] || (cd "$ROOT" && cargo build --locked -q -p rehydra-cli)
BIN=${BIN:-$CARGO_TARGET_DIR/debug/rehydra}
C=$HOME/.cache/rehydra
W=$(mktemp -d); trap 'kill $AZ $MOTO $PROXY 2>/dev/null; rm -rf "$W"' EXIT
head -c $((MIB / 2))M /dev/urandom > "$W/random.bin"
find /usr/share /usr/lib -type f -size -1M 2>/dev/null | head -20000 | xargs cat 2>/dev/null | head -c $((MIB / 2))M > "$W/text.bin"
mkdir "$W/data"; mv "$W/random.bin" "$W/text.bin" "$W/data/"
port () { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AP=$(port); MP=$(port); PP=$(port)
(cd "$W" && exec "$C/azurite/node_modules/.bin/azurite-blob" --blobPort "$AP" --inMemoryPersistence --silent --skipApiVersionCheck --loose >/dev/null 2>&1) & AZ=$!
"$C/venv/bin/moto_server" -p "$MP" >/dev/null 2>&1 & MOTO=$!
python3 "$HERE/latency-proxy.py" "$PP" "$AP" "$LATENCY_MS" & PROXY=$!
sleep 4
"$C/venv/bin/python" -c "import sys; from azure.storage.blob import BlobServiceClient as B; B.from_connection_string(sys.argv[1]).create_container('bench')" \
  "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$AP/devstoreaccount1;"
curl -sf -X PUT "http://127.0.0.1:$MP/bench" >/dev/null
export REHYDRA_PASSWORD=bench AZURE_STORAGE_USE_EMULATOR=true AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:$AP
export AWS_ACCESS_KEY_ID=t AWS_SECRET_ACCESS_KEY=t AWS_REGION=us-east-1 AWS_ENDPOINT=http://127.0.0.1:$MP AWS_ALLOW_HTTP=true
printf '| location | backup %s MiB | MB/s | restore | MB/s | restore peak RSS MiB |\n|---|---:|---:|---:|---:|---:|\n' "$MIB"
for repo in "$W/local" "azure://bench/r" "azure://bench/slow" "s3://bench/r"; do
  AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:$AP
  [ "$repo" = azure://bench/slow ] && AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:$PP
  R () { "$BIN" --no-catalog --quiet --cache-dir "$W/cache-$(echo "$repo" | tr -c 'a-z' _)" -r "$repo" "$@"; }
  R init --kdf-memory-kib 1024 --kdf-iterations 1 >/dev/null
  t0=$(date +%s.%N); R backup "$W/data" >/dev/null; t1=$(date +%s.%N)
  /usr/bin/time -f %M -o "$W/rss" "$BIN" --no-catalog --quiet --cache-dir "$W/cache-$(echo "$repo" | tr -c 'a-z' _)" -r "$repo" \
    restore latest --target "$W/out" >/dev/null; t2=$(date +%s.%N)
  cmp -s "$W/data/random.bin" "$W/out/random.bin" || { echo "RESTORE DIFFERS for $repo" >&2; exit 1; }
  rm -rf "$W/out"
  case $repo in azure://bench/slow) name="azure:// (Azurite, +$LATENCY_MS ms per request)";; azure://*) name="azure:// (Azurite)";; s3://*) name="s3:// (moto)";; *) name="local folder";; esac
  python3 -c "import sys; m=$MIB*1.048576; b=$t1-$t0; r=$t2-$t1; print(f'| {sys.argv[1]} | {b:.2f} s | {m/b:.0f} | {r:.2f} s | {m/r:.0f} | {int(sys.argv[2])//1024} |')" "$name" "$(tail -1 "$W/rss")"
done
