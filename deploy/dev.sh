#!/usr/bin/env bash
# Run the whole Lethe stack on this machine: PostgreSQL, the Temporal dev server, an in-process
# Kafka broker (or the cluster named by LETHE_KAFKA_BROKERS), the worker and the HTTP server.
#
#   deploy/dev.sh [lethe dev flags]      e.g. deploy/dev.sh --http 127.0.0.1:9090
#
# Needs Go and the PostgreSQL server binaries. The first run builds the pinned Temporal CLI into
# ./bin (a few minutes); later runs start in seconds. State lives in ./.lethe; Ctrl-C stops all.
# See `./bin/lethe dev --help` for the flags.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_prereqs go postgres
# --help needs only lethe itself, not the few minutes of a first Temporal CLI build.
case " $* " in *" -h "*|*" --help "*) ;; *) ensure_temporal ;; esac
build_lethe
exec ./bin/lethe dev "$@"
