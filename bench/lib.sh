# shellcheck shell=bash
# bench/lib.sh — helpers shared by bench/run, bench/flood and
# bench/secretless. Sourced, not run. Before sourcing, the script sets
# ROOT (the repository), LOG_TAG (its name in log lines) and HOST
# (always 127.0.0.1); it calls bench_start_tmp NAME to get $TMP and the
# cleanup traps.
#
# Provides: log, die, int_env; the temp directory, the process list and the
# cleanup on exit (every process started with spawn is stopped, the
# PostgreSQL database is dropped when DB_CREATED=1, $TMP is removed);
# spawn, stop_pid, port_in_use, wait_http; the results map R with record,
# get, num, calc, ok, bench_line, run_wrk, clean; the checks (check,
# CHECKS, PASSES/MISSES/INVALIDS); warm_pass; apt_install,
# need_wrk, build_release; git_rev, machine_line.

BENCH_DIR=$ROOT/bench
WRK_DIR=$BENCH_DIR/wrk
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release

log() { printf '[%s %s] %s\n' "${LOG_TAG:-bench}" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

int_env() { # name default min max
    local v=${!1:-$2}
    [[ $v =~ ^[0-9]+$ ]] || die "$1 must be a whole number (got '$v')"
    ((v >= $3 && v <= $4)) || die "$1 must be between $3 and $4 (got $v)"
    printf '%s' "$v"
}

# The servers must see only what we set.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(TOKENMINT_|DATABASE_URL$)' || true)
export RUST_LIB_BACKTRACE=0 RUST_BACKTRACE=0

# --- processes, temp files, cleanup -----------------------------------------
PIDS=()
DB_CREATED=0
TMP=""

stop_pid() { # pid: TERM it (and its children), KILL after 10 s
    local pid=$1 kids i k
    kill -0 "$pid" 2>/dev/null || return 0
    kids=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    for k in $kids; do
        if kill -0 "$k" 2>/dev/null; then kill -KILL "$k" 2>/dev/null || true; fi
    done
    wait "$pid" 2>/dev/null || true
}

drop_db() { # the PostgreSQL database $DB_NAME, if this run created it
    if [[ $DB_CREATED == 1 ]]; then
        psql "$PG_ADMIN_URL" -qAt -v ON_ERROR_STOP=1 \
            -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 ||
            log "could not drop database $DB_NAME"
        DB_CREATED=0
    fi
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    drop_db
    [[ -n $TMP ]] && rm -rf "$TMP"
    exit "$rc"
}

bench_start_tmp() { # name: the temp directory ($TMP) and the cleanup traps
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/tokenmint-$1.XXXXXX")
    trap cleanup EXIT
    trap 'log "interrupted"; exit 130' INT TERM
}

spawn() { # log_file cmd...: start in the background, remember the pid
    local out=$1
    shift
    "$@" >"$out" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

wait_http() { # url pid log: until 200, at most 60 s
    local url=$1 pid=$2 logf=$3 i
    for ((i = 0; i < 240; i++)); do
        if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "process $pid exited before $url answered; its log:"
            tail -n 30 "$logf" >&2 || true
            return 1
        fi
        sleep 0.25
    done
    log "$url did not answer 200 within 60 s; log:"
    tail -n 30 "$logf" >&2 || true
    return 1
}

# --- results ----------------------------------------------------------------
declare -A R # "<case>.<field>" -> value
RAW=()       # every machine-readable line, for the results file

record() { # case "k=v k=v ..."
    local kv
    for kv in $2; do R["$1.${kv%%=*}"]=${kv#*=}; done
    RAW+=("$1 $2")
}

get() { printf '%s' "${R[$1]:-}"; }
num() { local v=${R[$1]:-}; printf '%s' "${v:-0}"; } # a count, 0 when absent
calc() { awk "BEGIN {printf \"%.${2:-3}f\", $1}" 2>/dev/null || printf 'n/a'; }
ok() { awk "BEGIN {exit !($1)}"; } # a numeric condition

bench_line() { # wrk output file -> its BENCH line without the prefix
    local l
    l=$(grep '^BENCH ' "$1" | tail -n 1 || true)
    [[ -n $l ]] || { cat "$1" >&2; die "wrk printed no BENCH line ($1)"; }
    printf '%s' "${l#BENCH }"
}

run_wrk() { # case conns threads duration script url [script args...]
    local name=$1 conns=$2 threads=$3 dur=$4 script=$5 url=$6 out line
    shift 6
    out=$TMP/wrk-$name.txt
    if ! timeout "$((dur + 60))" wrk -t"$threads" -c"$conns" -d"${dur}s" --timeout 10s \
        -s "$WRK_DIR/$script" "$url" -- "$@" >"$out" 2>&1; then
        cat "$out" >&2
        die "wrk failed for $name"
    fi
    line=$(bench_line "$out")
    record "$name" "$line"
    log "  $name: $line"
}

# Checks: each a line of CHECKS, counted in PASSES, MISSES, INVALIDS.
CHECKS=()
PASSES=0 MISSES=0 INVALIDS=0
CHECK_MISS=MISS                    # the verdict of a missed target
CHECK_FORMAT='%-46s %14s  %-12s %s' # label, value, target, verdict

check() { # label value_text condition target_text valid(0/1) [why invalid]
    local verdict
    if [[ $5 != 1 ]]; then
        verdict="INVALID (${6:-run had errors})"
        INVALIDS=$((INVALIDS + 1))
    elif ok "$3"; then
        verdict=PASS
        PASSES=$((PASSES + 1))
    else
        verdict=$CHECK_MISS
        MISSES=$((MISSES + 1))
    fi
    # shellcheck disable=SC2059 # the format is this file's or the script's
    CHECKS+=("$(printf "$CHECK_FORMAT" "$1" "$2" "$4" "$verdict")")
}

clean() { # case -> 1 when the run had no non-2xx answer and no socket errors
    local c=$1
    local bad=$(($(num "$c.non2xx") + $(num "$c.connect_err") + $(num "$c.read_err") + $(num "$c.write_err") + $(num "$c.timeouts")))
    ((bad == 0)) && echo 1 || echo 0
}

warm_pass() { # url pairs form [extra...]: every pair once, all must be 200
    local out l
    out=$(timeout 600 "$BIN/warm" --url "$1" --pairs "$2" --form "$3" --concurrency 8 \
        --max-seconds 540 "${@:4}") || die "warm-up against $1 failed: $out"
    while IFS= read -r l; do log "  $l"; done <<<"$out"
}

# --- prerequisites ----------------------------------------------------------
apt_install() {
    local sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo -n)
    log "installing $* with apt-get"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

need_wrk() { # wrk and curl, installed with apt-get if missing
    command -v wrk >/dev/null || apt_install wrk
    command -v wrk >/dev/null || die "wrk is not installed"
    command -v curl >/dev/null || apt_install curl
    return 0
}

build_release() { # binaries...: build (unless BENCH_SKIP_BUILD=1), then check they exist
    local b
    if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
        log "building release (cargo build --release -p tokenmint -p tokenmint-bench)"
        cargo build --release -p tokenmint -p tokenmint-bench >&2
    fi
    for b in "$@"; do
        [[ -x $BIN/$b ]] || die "$BIN/$b is missing (build first)"
    done
}

git_rev() { # short commit, +dirty when the tree has changes
    printf '%s%s' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
}

machine_line() { # "N cores, M GiB"
    printf '%s cores, %s' "$(nproc)" "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
}
