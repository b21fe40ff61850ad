#!/usr/bin/env bash
# tessera's load benchmark. Builds tessera in release mode, starts it on
# SQLite (and on PostgreSQL when BENCH_POSTGRES_URL is set), creates fixtures
# through the real CLI and endpoints, and drives it over loopback with wrk at
# each concurrency for DURATION seconds per scenario. Prints a Markdown table
# (also written to target/bench/results.md) with requests/s, p50, p99,
# errors, the server's CPU seconds (from /proc), requests per server
# CPU-second, peak RSS, and the same-run ceilings: the /health/live rate and
# the raw signing rate of the key in use.
#
#   bench/load.sh                      # defaults: DURATION=5 CONCURRENCY="1 16 64"
#   DURATION=10 ALGORITHMS="ES256" bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
ALGORITHMS=${ALGORITHMS:-"ES256 EdDSA RS256"}
TOKENS=${TOKENS:-2000}
PORT=${PORT:-18080}
OUT=target/bench
mkdir -p "$OUT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v jq >/dev/null || { apt-get update -qq && apt-get install -y -qq jq; }

cargo build --release --quiet
BIN=target/release/tessera
TICKS=$(getconf CLK_TCK)
RESULTS="$OUT/results.md"

cpu_seconds() { # utime + stime of a pid, in seconds
  awk -v t="$TICKS" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"
}
peak_rss_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
rss_mb() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# One wrk run against the server in $SERVER_PID; appends a table row.
run() { # name concurrency path [lua]
  local name=$1 conns=$2 path=$3 lua=${4:-}
  local threads=$(( conns < 2 ? 1 : 2 ))
  local before after wrk_out
  before=$(cpu_seconds "$SERVER_PID")
  wrk_out=$(/usr/bin/time -f "WRKCPU %U %S" wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency \
    ${lua:+-s "$lua"} "http://127.0.0.1:$PORT$path" 2>&1)
  after=$(cpu_seconds "$SERVER_PID")
  local rps p50 p99 errors cpu per_cpu wrk_cpu
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$wrk_out")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$wrk_out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$wrk_out")
  errors=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' <<<"$wrk_out")
  wrk_cpu=$(awk '/WRKCPU/ { printf "%.2f", $2 + $3 }' <<<"$wrk_out")
  cpu=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')
  total=$(awk '/requests in/ { print $1 }' <<<"$wrk_out")
  per_cpu=$(awk -v n="$total" -v c="$cpu" 'BEGIN { if (c > 0) printf "%.0f", n / c; else print "-" }')
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
    "$BACKEND" "$name" "$conns" "$rps" "$p50" "$p99" "$errors" "$cpu" "$per_cpu" "$(peak_rss_mb "$SERVER_PID")" "$wrk_cpu" | tee -a "$RESULTS"
}

lua_post() { # file body [basic-auth user:pass]
  local file=$1 body=$2 auth=${3:-}
  {
    echo 'wrk.method = "POST"'
    echo "wrk.body = \"$body\""
    echo 'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"'
    if [ -n "$auth" ]; then
      echo "wrk.headers[\"Authorization\"] = \"Basic $(printf '%s' "$auth" | base64 -w0)\""
    fi
  } >"$file"
}

lua_cycle() { # file tokens-file body-prefix auth
  local file=$1 tokens=$2 prefix=$3 auth=$4
  cat >"$file" <<LUA
local tokens = {}
for line in io.lines("$tokens") do tokens[#tokens + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s' "$auth" | base64 -w0)"
request = function()
  i = i % #tokens + 1
  return wrk.format(nil, nil, nil, "$prefix" .. tokens[i])
end
LUA
}

start_server() { # algorithm database-url
  local work=$OUT/run-$1-$BACKEND
  rm -rf "$work"; mkdir -p "$work"
  export TESSERA__DATABASE__URL=$2
  export TESSERA__SERVER__LISTEN=127.0.0.1:$PORT
  export TESSERA__SERVER__ISSUER=http://127.0.0.1:$PORT
  export TESSERA__KEYS__ALGORITHM=$1
  export TESSERA__KEYS__ENCRYPTION_KEY_FILE=$work/kek
  export TESSERA__THROTTLE__IP_MAX_FAILURES=1000000
  export TESSERA__LOG__LEVEL=warn
  "$BIN" migrate >/dev/null
  "$BIN" serve >"$work/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.1; done
  IDLE_RSS=$(rss_mb "$SERVER_PID")
  CLIENT=$("$BIN" client add --name bench --grant-type client_credentials --scope profile --json)
  CLIENT_ID=$(jq -r .client_id <<<"$CLIENT"); CLIENT_SECRET=$(jq -r .client_secret <<<"$CLIENT")
  RS=$("$BIN" client add --name bench-rs --grant-type client_credentials --scope profile \
    --resource-server "http://127.0.0.1:$PORT" --json)
  RS_ID=$(jq -r .client_id <<<"$RS"); RS_SECRET=$(jq -r .client_secret <<<"$RS")
}

stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }

mint_tokens() { # count file
  : >"$2"
  for _ in $(seq 1 "$1"); do
    curl -s -u "$CLIENT_ID:$CLIENT_SECRET" "http://127.0.0.1:$PORT/oauth2/token" \
      -d grant_type=client_credentials -d scope=profile | jq -r .access_token >>"$2"
  done
}

scenarios() { # algorithm
  local alg=$1 work=$OUT/run-$1-$BACKEND
  lua_post "$work/cc.lua" "grant_type=client_credentials&scope=profile" "$CLIENT_ID:$CLIENT_SECRET"
  for c in $CONCURRENCY; do run "client_credentials $alg" "$c" /oauth2/token "$work/cc.lua"; done
  [ "$alg" = "ES256" ] || return 0
  for c in $CONCURRENCY; do run "health/live (HTTP ceiling)" "$c" /health/live; done
  for c in $CONCURRENCY; do run "JWKS" "$c" /.well-known/jwks.json; done
  for c in $CONCURRENCY; do run "discovery" "$c" /.well-known/openid-configuration; done
  mint_tokens 1 "$work/one.txt"
  lua_post "$work/same.lua" "token=$(cat "$work/one.txt")" "$RS_ID:$RS_SECRET"
  for c in $CONCURRENCY; do run "introspect, same token" "$c" /oauth2/introspect "$work/same.lua"; done
  mint_tokens "$TOKENS" "$work/many.txt"
  lua_cycle "$work/many.lua" "$work/many.txt" "token=" "$RS_ID:$RS_SECRET"
  for c in $CONCURRENCY; do run "introspect, $TOKENS different tokens" "$c" /oauth2/introspect "$work/many.lua"; done
  lua_cycle "$work/revoke.lua" "$work/many.txt" "token=" "$CLIENT_ID:$CLIENT_SECRET"
  for c in $CONCURRENCY; do run "revoke (durable write)" "$c" /oauth2/revoke "$work/revoke.lua"; done
}

{
  echo "Run on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, DURATION=${DURATION}s, wrk on the same machine."
  echo
  echo "| backend | scenario | c | req/s | p50 | p99 | errors | server CPU s | req per server CPU-s | peak RSS MB | wrk CPU s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >"$RESULTS"
cat "$RESULTS"

backends=("sqlite|sqlite://$OUT/bench.db")
if [ -n "${BENCH_POSTGRES_URL:-}" ]; then backends+=("postgres|$BENCH_POSTGRES_URL"); fi
for entry in "${backends[@]}"; do
  BACKEND=${entry%%|*}; url=${entry#*|}
  for alg in $ALGORITHMS; do
    rm -f "$OUT"/bench.db*
    start_server "$alg" "$url"
    scenarios "$alg"
    echo "| $BACKEND | idle RSS before the runs ($alg) | | | | | | | | $IDLE_RSS | |" | tee -a "$RESULTS"
    stop_server
  done
done

{
  echo
  echo "Ceilings measured in the same run:"
  for alg in $ALGORITHMS; do
    printf -- '- raw %s signing rate on one core: %s signatures/s\n' "$alg" "$("$BIN" diagnose sign-rate --algorithm "$alg" --seconds 2)"
  done
  fsyncs=$(dd if=/dev/zero of="$OUT/fsync.test" bs=4k count=500 oflag=dsync 2>&1 | awk '/copied/ { print $(NF-1), $NF }')
  rm -f "$OUT/fsync.test"
  echo "- disk: 500 synchronous 4 KiB writes at $fsyncs"
} | tee -a "$RESULTS"
