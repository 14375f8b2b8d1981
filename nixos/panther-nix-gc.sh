#!/usr/bin/env bash
# panther-nix-gc STATE_FILE COMMAND [ARGS...]
#
# Runs COMMAND (nix-collect-garbage and its options), passes its output on
# (to the journal, under systemd), and writes what panther-exporter's nix
# collector reads into STATE_FILE: when the run finished, its exit status
# and nix-collect-garbage's summary line ("N store paths deleted, X MiB
# freed", printed on stdout). Nothing else keeps what a GC freed. The file is
# written beside STATE_FILE and renamed, so a scrape never reads half of it.
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: panther-nix-gc STATE_FILE COMMAND [ARGS...]" >&2
  exit 2
fi
state=$1
shift
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
"$@" | tee "$out"
rc=${PIPESTATUS[0]}
dir=$(dirname "$state")
if mkdir -p "$dir" && tmp=$(mktemp "$dir/.nix-gc.XXXXXX"); then
  {
    echo "finished $(date +%s)"
    echo "exit_status $rc"
    grep -E '^[0-9]+ store paths deleted, ' "$out" | tail -n 1
  } >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$state"
else
  echo "panther-nix-gc: cannot write $state" >&2
fi
exit "$rc"
