#!/usr/bin/env bash
# tessera's load benchmark. Builds tessera in release mode, starts it on
# SQLite (and on PostgreSQL when BENCH_POSTGRES_URL is set), creates fixtures
# through the real CLI and endpoints, and drives it over loopback with wrk at
# each concurrency for DURATION seconds per scenario. Prints a Markdown table
# (also written to target/bench/results.md and to the end of
# docs/benchmarks.md) with requests/s, p50, p99,
# errors, the server's CPU seconds (from /proc), requests per server
# CPU-second, peak RSS, and the same-run ceilings: the /health/live rate,
# the raw signing and verification rates of each algorithm, the disk's
# synchronous-write rate. Then the cost-growth runs: introspection and
# revocation again with GROWTH grants and refresh tokens seeded in bulk.
#
#   bench/load.sh                      # DURATION=5 CONCURRENCY="1 16 64" GROWTH="10000 1000000"
#   DURATION=10 ALGORITHMS="ES256" GROWTH="" bench/load.sh
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1/tessera_bench bench/load.sh  # also PostgreSQL
#                                      # (the database it names is dropped and recreated)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
ALGORITHMS=${ALGORITHMS:-"ES256 EdDSA RS256"}
# Single-use lists are sized for this rate; a run that spends its list says so.
NEW_TOKENS_PER_SECOND=${NEW_TOKENS_PER_SECOND:-12000}
REVOKES_PER_SECOND=${REVOKES_PER_SECOND:-6000}
LABEL=""
PORT=${PORT:-18080}
GROWTH=${GROWTH-"10000 1000000"}
REDIRECT=http://127.0.0.1:9/callback
# One PKCE pair (S256) for every code of the run.
VERIFIER=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
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

# A request list used once: each wrk thread takes every THREADS-th line and
# stops when its share is spent, so no code or refresh token is presented
# twice (a replay would revoke its grant and count as an error).
lua_once() { # file list body-prefix auth [capture-key capture-out]
  local file=$1 list=$2 prefix=$3 auth=$4 key=${5:-} out=${6:-}
  local threads=$(( ${ONCE_CONCURRENCY:-2} < 2 ? 1 : 2 ))
  cat >"$file" <<LUA
local counter = 0
function setup(thread) thread:set("id", counter); counter = counter + 1 end
local mine, i, out = {}, 0, nil
function init(args)
  local n = 0
  for line in io.lines("$list") do
    if n % $threads == id then mine[#mine + 1] = line end
    n = n + 1
  end
  if "$out" ~= "" then out = io.open("$out." .. id, "a") end
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s' "$auth" | base64 -w0)"
request = function()
  i = i + 1
  if i > #mine then
    -- Spent: never present a token twice (a replayed code or refresh token
    -- revokes its grant); an unknown one changes nothing.
    wrk.thread:stop()
    return wrk.format(nil, nil, nil, "${prefix}spent")
  end
  return wrk.format(nil, nil, nil, "$prefix" .. mine[i])
end
response = function(status, headers, body)
  if out then
    local v = body:match('"$key":"([^"]+)"')
    if v then out:write(v, "\n"); out:flush() end
  end
end
LUA
}

# Repeats one request and keeps what each answer carries: a value from the
# JSON body ("access_token") or the code in the Location header.
lua_capture() { # file out method body auth-header capture (json:KEY | location)
  local file=$1 out=$2 method=$3 body=$4 header=$5 capture=$6
  cat >"$file" <<LUA
local counter = 0
function setup(thread) thread:set("id", counter); counter = counter + 1 end
local out
function init(args) out = io.open("$out." .. id, "w") end
wrk.method = "$method"
wrk.body = "$body"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
$header
response = function(status, headers, body)
  local v
  if "$capture" == "location" then
    v = (headers["location"] or headers["Location"] or ""):match("[?&]code=([^&]+)")
  else
    v = body:match('"${capture#json:}":"([^"]+)"')
  end
  if v then out:write(v, "\n"); out:flush() end
end
LUA
}

# Runs wrk for SECONDS to fill LIST from a capture script, then joins the
# per-thread files.
harvest() { # seconds list lua path
  rm -f "$2".*
  wrk -t2 -c16 -d"$1s" -s "$3" "http://127.0.0.1:$PORT$4" >/dev/null
  cat "$2".* >"$2" 2>/dev/null || : >"$2"
  rm -f "$2".*
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
  # A user signed in through the real login form, and a first-party web
  # app (no consent page), for codes minted through the real flow.
  printf 'bench-password-1234\n' | "$BIN" user add bench --password-stdin >/dev/null
  APP=$("$BIN" client add --name bench-app --first-party --redirect-uri "$REDIRECT" \
    --scope profile --scope offline_access --json)
  APP_ID=$(jq -r .client_id <<<"$APP"); APP_SECRET=$(jq -r .client_secret <<<"$APP")
  local jar=$work/cookies page csrf
  page=$(curl -s -c "$jar" -b "$jar" "http://127.0.0.1:$PORT/login")
  csrf=$(grep -o 'name="csrf_token" value="[^"]*"' <<<"$page" | sed 's/.*value="//; s/"$//')
  curl -s -o /dev/null -c "$jar" -b "$jar" -H "Origin: http://127.0.0.1:$PORT" \
    --data-urlencode "csrf_token=$csrf" -d username=bench -d password=bench-password-1234 \
    -d return_to=/ "http://127.0.0.1:$PORT/login"
  SESSION=$(awk '$6 == "tessera_session" { print $7 }' "$jar")
  [ -n "$SESSION" ] || { echo "signing in for the code-flow scenarios failed" >&2; exit 1; }
}

stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }

basic() { printf 'wrk.headers["Authorization"] = "Basic %s"' "$(printf '%s' "$1" | base64 -w0)"; }

# Fills FILE with at least COUNT fresh access tokens of the bench client.
mint_tokens() { # count file
  local work=$OUT/run-mint all
  mkdir -p "$work"
  all=$work/minted
  lua_capture "$work/mint.lua" "$work/batch" POST "grant_type=client_credentials&scope=profile" \
    "$(basic "$CLIENT_ID:$CLIENT_SECRET")" json:access_token
  : >"$all"
  while [ "$(wc -l <"$all")" -lt "$1" ]; do
    harvest 1 "$work/batch" "$work/mint.lua" /oauth2/token
    cat "$work/batch" >>"$all"
  done
  head -n "$1" "$all" >"$2"
  rm -f "$all" "$work/batch"
}

# A scenario whose list of single-use tokens ran out before DURATION ended
# says so: its req/s is then understated (wrk divides by the full duration);
# its requests per CPU-second stay exact.
run_once() { # name concurrency path lua list
  local before rps
  before=$(wc -l <"$5")
  run "$1" "$2" "$3" "$4"
  rps=$(tail -n 1 "$RESULTS" | awk -F'|' '{ gsub(/ /, "", $5); print $5 }')
  if awk -v r="$rps" -v d="$DURATION" -v n="$before" 'BEGIN { exit !(r * d >= 0.95 * n) }'; then
    echo "- $BACKEND, $1, c=$2: its list of $before single-use tokens ran out before the ${DURATION} s ended, so req/s is a lower bound (requests per server CPU-second are exact)." >>"$OUT/notes.md"
  fi
}

scenarios() { # algorithm
  local alg=$1 work=$OUT/run-$1-$BACKEND
  lua_post "$work/cc.lua" "grant_type=client_credentials&scope=profile" "$CLIENT_ID:$CLIENT_SECRET"
  for c in $CONCURRENCY; do run "client_credentials $alg" "$c" /oauth2/token "$work/cc.lua"; done
  [ "$alg" = "ES256" ] || return 0
  for c in $CONCURRENCY; do run "health/live (HTTP ceiling)" "$c" /health/live; done
  for c in $CONCURRENCY; do run "JWKS" "$c" /.well-known/jwks.json; done
  for c in $CONCURRENCY; do run "discovery" "$c" /.well-known/openid-configuration; done
  introspection_and_revocation "$work"
  code_flow "$work"
}

# Introspection of a token seen before, of never-seen tokens, and revocation.
introspection_and_revocation() { # work-dir
  local work=$1
  mint_tokens 1 "$work/one.txt"
  lua_post "$work/same.lua" "token=$(cat "$work/one.txt")" "$RS_ID:$RS_SECRET"
  for c in $CONCURRENCY; do run "introspect, same token$LABEL" "$c" /oauth2/introspect "$work/same.lua"; done
  for c in $CONCURRENCY; do
    mint_tokens $(( NEW_TOKENS_PER_SECOND * DURATION )) "$work/new.txt"
    ONCE_CONCURRENCY=$c lua_once "$work/new.lua" "$work/new.txt" "token=" "$RS_ID:$RS_SECRET"
    run_once "introspect, never-seen tokens$LABEL" "$c" /oauth2/introspect "$work/new.lua" "$work/new.txt"
  done
  for c in $CONCURRENCY; do
    mint_tokens $(( REVOKES_PER_SECOND * DURATION )) "$work/revoke.txt"
    ONCE_CONCURRENCY=$c lua_once "$work/revoke.lua" "$work/revoke.txt" "token=" "$CLIENT_ID:$CLIENT_SECRET"
    run_once "revoke access token (durable write)$LABEL" "$c" /oauth2/revoke "$work/revoke.lua" "$work/revoke.txt"
  done
}

# Codes minted through the real flow (signed-in user, GET /oauth2/authorize,
# code taken from the redirect), exchanged once each with PKCE; the refresh
# tokens those exchanges returned are then each refreshed once.
code_flow() { # work-dir
  local work=$1 query
  query="/oauth2/authorize?response_type=code&client_id=$APP_ID&redirect_uri=$(jq -rn --arg u "$REDIRECT" '$u|@uri')"
  query+="&scope=profile%20offline_access&state=bench&code_challenge=$CHALLENGE&code_challenge_method=S256"
  lua_capture "$work/authorize.lua" "$work/codes.txt" GET "" \
    "wrk.headers[\"Cookie\"] = \"tessera_session=$SESSION\"" location
  for c in $CONCURRENCY; do
    harvest $(( DURATION * 3 )) "$work/codes.txt" "$work/authorize.lua" "$query"
    rm -f "$work/rts-$c.txt".*
    ONCE_CONCURRENCY=$c lua_once "$work/exchange.lua" "$work/codes.txt" \
      "grant_type=authorization_code&redirect_uri=$(jq -rn --arg u "$REDIRECT" '$u|@uri')&code_verifier=$VERIFIER&code=" \
      "$APP_ID:$APP_SECRET" refresh_token "$work/rts-$c.txt"
    run_once "authorization_code exchange (durable write)" "$c" /oauth2/token "$work/exchange.lua" "$work/codes.txt"
    cat "$work/rts-$c.txt".* >"$work/rts-$c.txt"; rm -f "$work/rts-$c.txt".*
  done
  for c in $CONCURRENCY; do
    ONCE_CONCURRENCY=$c lua_once "$work/refresh.lua" "$work/rts-$c.txt" "grant_type=refresh_token&refresh_token=" "$APP_ID:$APP_SECRET"
    run_once "refresh_token rotation (durable write)" "$c" /oauth2/token "$work/refresh.lua" "$work/rts-$c.txt"
  done
}

# Cost growth: the introspection and revocation runs again with N grants
# and refresh tokens seeded in bulk, plus introspection and revocation of
# randomly chosen seeded refresh tokens (lookups in the big tables).
growth() { # backend-url
  local url=$1 n work seed
  for n in $GROWTH; do
    rm -f "$OUT"/bench.db*
    [ "$BACKEND" = sqlite ] || reset_postgres "$url"
    start_server ES256 "$url"
    work=$OUT/run-ES256-$BACKEND
    # The seeded grants belong to a client of their own: one client with a
    # million standing client-credentials grants cannot happen (it keeps
    # one), and would make the bench client's grant lookup scan them all.
    seed=$("$BIN" client add --name seed --grant-type client_credentials --scope profile --json)
    SEED_ID=$(jq -r .client_id <<<"$seed"); SEED_SECRET=$(jq -r .client_secret <<<"$seed")
    "$BIN" diagnose seed --client-id "$SEED_ID" --count "$n" >/dev/null
    LABEL=", $n grants" introspection_and_revocation "$work"
    cat >"$work/seeded.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
  return wrk.format(nil, nil, nil, "token=seed-rt-" .. math.random(0, $n - 1))
end
LUA
    { cat "$work/seeded.lua"; basic "$SEED_ID:$SEED_SECRET"; echo; } >"$work/seeded-client.lua"
    run "introspect a random seeded refresh token, $n grants" 64 /oauth2/introspect "$work/seeded-client.lua"
    run "revoke a random seeded refresh token (durable write), $n grants" 64 /oauth2/revoke "$work/seeded-client.lua"
    stop_server
  done
}

reset_postgres() { # url: drops and recreates the database it names
  local db=${1##*/} base=${1%/*}
  psql "$base/postgres" -qc "DROP DATABASE IF EXISTS \"$db\"" -c "CREATE DATABASE \"$db\"" >/dev/null
}

{
  echo "Run on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, DURATION=${DURATION}s, wrk on the same machine."
  echo
  echo "| backend | scenario | c | req/s | p50 | p99 | errors | server CPU s | req per server CPU-s | peak RSS MB | wrk CPU s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >"$RESULTS"
: >"$OUT/notes.md"
cat "$RESULTS"

backends=("sqlite|sqlite://$OUT/bench.db")
if [ -n "${BENCH_POSTGRES_URL:-}" ]; then backends+=("postgres|$BENCH_POSTGRES_URL"); fi
for entry in "${backends[@]}"; do
  BACKEND=${entry%%|*}; url=${entry#*|}
  for alg in $ALGORITHMS; do
    rm -f "$OUT"/bench.db*
    [ "$BACKEND" = sqlite ] || reset_postgres "$url"
    start_server "$alg" "$url"
    scenarios "$alg"
    echo "| $BACKEND | idle RSS before the runs ($alg) | | | | | | | | $IDLE_RSS | |" | tee -a "$RESULTS"
    stop_server
  done
  [ -z "$GROWTH" ] || growth "$url"
done

{
  if [ -s "$OUT/notes.md" ]; then echo; echo "Notes:"; cat "$OUT/notes.md"; fi
  echo
  echo "Ceilings measured in the same run:"
  for alg in $ALGORITHMS; do
    printf -- '- raw %s signing rate on one core: %s signatures/s\n' "$alg" "$("$BIN" diagnose sign-rate --algorithm "$alg" --seconds 2)"
    printf -- '- raw %s verification rate on one core: %s verifications/s\n' "$alg" "$("$BIN" diagnose verify-rate --algorithm "$alg" --seconds 2)"
  done
  fsyncs=$(dd if=/dev/zero of="$OUT/fsync.test" bs=4k count=500 oflag=dsync 2>&1 | awk '/copied/ { print $(NF-1), $NF }')
  rm -f "$OUT/fsync.test"
  echo "- disk: 500 synchronous 4 KiB writes at $fsyncs"
} | tee -a "$RESULTS"

# The raw table goes between the markers at the end of docs/benchmarks.md.
if grep -q '<!-- results:start -->' docs/benchmarks.md; then
  awk -v results="$RESULTS" '
    /<!-- results:start -->/ { print; while ((getline line < results) > 0) print line; skip = 1; next }
    /<!-- results:end -->/ { skip = 0 }
    !skip' docs/benchmarks.md >"$OUT/benchmarks.md"
  mv "$OUT/benchmarks.md" docs/benchmarks.md
  echo "docs/benchmarks.md: raw results replaced"
fi
