#!/usr/bin/env bash
# Show the trader process's TCP sockets by state and warn when there are too many.
#
#   utils/monitor_sockets.sh                 # once
#   utils/monitor_sockets.sh --watch 30      # every 30 s until Ctrl-C
#   utils/monitor_sockets.sh --threshold 20 --pattern live_trader.py --pid 1234
#   utils/monitor_sockets.sh --journal journal.sqlite   # name the stream sockets (default: JOURNAL_PATH or ./journal.sqlite)
#
# ESTABLISHED and CLOSE_WAIT sockets belong to the process; TIME_WAIT sockets belong to nobody once
# closed, so they are counted towards the peers the process talks to. The bot reuses one HTTP session
# per API, so the count should stay flat over hours; a steady climb means connections are leaking.
# Exit code: 0 below the threshold (or trader not running), 1 above it, 2 bad arguments.
set -u

pattern="live_trader.py"
threshold=50
watch=0
pid=""
journal="${JOURNAL_PATH:-journal.sqlite}"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

# "PORT NAME" per stream connection, from the status the bot writes to its journal after each iteration (the
# websockets share host and port with the REST API, so only their local port tells them apart)
stream_ports() {
  [ -f "$journal" ] || return 0
  python3 - "$journal" <<'PY' 2>/dev/null || true
import json, sqlite3, sys
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
row = con.execute("SELECT value FROM state WHERE key='status'").fetchone()
streams = (json.loads(row[0]).get("streams") or {}) if row else {}
for name, s in streams.items():
    if isinstance(s, dict) and "connected" in s:
        print(s.get("local_port") or 0, name.replace("_", "-"), s.get("last_message") or "never")
PY
}

while [ $# -gt 0 ]; do
  case "$1" in
    --watch) watch="${2:-}"; shift 2 ;;
    --threshold) threshold="${2:-}"; shift 2 ;;
    --pattern) pattern="${2:-}"; shift 2 ;;
    --pid) pid="${2:-}"; shift 2 ;;
    --journal) journal="${2:-}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$watch" "$threshold"; do
  case "$n" in ''|*[!0-9]*) echo "error: --watch and --threshold take whole numbers" >&2; exit 2 ;; esac
done
if ! command -v ss >/dev/null 2>&1; then
  echo "error: 'ss' (iproute2) is not installed; install it (apt-get install iproute2)" >&2
  exit 2
fi

report() {
  local pids
  if [ -n "$pid" ]; then
    pids="$pid"
    [ -d "/proc/$pid" ] || { echo "$(date '+%F %T') process $pid is not running"; return 0; }
  else
    pids=""
    for candidate in $(pgrep -f -- "$pattern" || true); do
      # skip this script and its subshells (their command line contains the pattern too)
      tr '\0' ' ' < "/proc/$candidate/cmdline" 2>/dev/null | grep -q monitor_sockets && continue
      [ -d "/proc/$candidate" ] && pids="$pids $candidate"
    done
  fi
  if [ -z "$pids" ]; then
    echo "$(date '+%F %T') trader is not running (no process matching '$pattern'); nothing to count"
    return 0
  fi
  local total=0 status=0
  for p in $pids; do
    # the process's own sockets, by state
    local own
    own=$(ss -tanp 2>/dev/null | grep "pid=$p," || true)
    local estab closewait other peers timewait
    estab=$(printf '%s\n' "$own" | grep -c '^ESTAB' || true)
    closewait=$(printf '%s\n' "$own" | grep -c '^CLOSE-WAIT' || true)
    other=$(printf '%s\n' "$own" | grep -v '^$' | grep -vc '^ESTAB\|^CLOSE-WAIT\|^LISTEN' || true)
    peers=$(printf '%s\n' "$own" | awk 'NF {print $5}' | sort -u)
    timewait=0
    if [ -n "$peers" ]; then
      timewait=$(ss -tan state time-wait 2>/dev/null | awk 'NR>1 {print $4}' | grep -cxF -f <(printf '%s\n' "$peers") || true)
    fi
    local sum=$((estab + closewait + timewait + other))
    total=$((total + sum))
    printf '%s pid %s (%s): ESTABLISHED %d  CLOSE_WAIT %d  TIME_WAIT %d  other %d  total %d\n' \
      "$(date '+%F %T')" "$p" "$(tr '\0\n' '  ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-60)" \
      "$estab" "$closewait" "$timewait" "$other" "$sum"
    while read -r port name last; do
      [ -n "$port" ] || continue
      local line=""
      [ "$port" != "0" ] && line=$(printf '%s\n' "$own" | awk -v p=":$port" '$4 ~ p"$" {print $1, $4, "->", $5}' | head -1)
      if [ -n "$line" ]; then
        echo "  stream $name: $line (last message $last)"
      else
        echo "  stream $name: not connected at the last iteration (last message $last)"
      fi
    done < <(stream_ports)
    if [ "$closewait" -gt 0 ]; then
      echo "  note: CLOSE_WAIT means the peer closed and the process has not: a connection the code keeps holding"
    fi
  done
  if [ "$total" -gt "$threshold" ]; then
    echo "WARNING: $total sockets, above the threshold of $threshold: connections may be leaking"
    status=1
  fi
  return $status
}

if [ "$watch" -gt 0 ]; then
  while true; do report; sleep "$watch"; done
else
  report
fi
