#!/usr/bin/env bash
# Run Lethe's checks and tests against the real services: PostgreSQL, Apache Kafka and the
# Temporal dev server. No Docker: everything starts from this checkout and stops on exit.
#
# Usage:
#   deploy/test.sh                 full run, what CI does (.ci/run):
#                                    go vet ./...
#                                    ./bin/workflowcheck ./workflows/...
#                                    go test -count=1 -p 1 -timeout 40m ./...
#                                    the same vet and test inside deploy/examples/go-connector,
#                                      a module of its own (an outside connector), and inside
#                                      deploy/monitoring (alert rules and dashboard queries)
#                                    deploy/schemathesis/run.sh  (the OpenAPI fuzzer, every
#                                      check, against a live `lethe dev`; 30 to 60 s)
#                                  every step runs; the script fails if any did.
#   deploy/test.sh ARGS...         focused run: only `go test`, with ARGS after the defaults
#                                  above (so -count=3 or -timeout 5m override them). ./... is
#                                  added unless ARGS name a package (./x, ../x, ., or the
#                                  module path), e.g.
#                                    deploy/test.sh -run TestConsume ./internal/bus/...
#                                    deploy/test.sh -v -run TestRequestWorkflow
#
# Environment:
#   CI=true                 a test whose service is not configured fails instead of skipping.
#   LETHE_TEST_DIR=DIR      where the test stack keeps its data and logs (default ./.lethe/test);
#                           give concurrent runs in one checkout different directories.
#   LETHE_TEST_KAFKA=inprocess
#                           use the in-process broker instead of Apache Kafka, for machines
#                           without Java. Not the real thing: CI always uses Apache Kafka.
#
# First run: builds the pinned Temporal CLI and workflowcheck into ./bin, fetches the Kafka jars
# and makes the Python connector's virtualenv under ./.lethe/cache (a few minutes); later runs
# reuse them.
#
# The tests read LETHE_TEST_DATABASE_URL, LETHE_TEST_KAFKA_BROKERS, LETHE_TEMPORAL_BIN,
# LETHE_KAFKA_JARS (see internal/testenv) and LETHE_PYTHON (the example Python connector's
# virtualenv, made by deploy/examples/python-connector/setup.sh, which needs Python 3.11+); to keep the services up between your own `go test`
# runs instead, use `./bin/lethe stack` (see its --help).

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TEST_DIR="${LETHE_TEST_DIR:-$LETHE_ROOT/.lethe/test}"
mkdir -p "$TEST_DIR"
TEST_DIR="$(cd "$TEST_DIR" && pwd)"
ENV_FILE="$TEST_DIR/env"
STACK_LOG="$TEST_DIR/stack.log"
KAFKA_MODE="${LETHE_TEST_KAFKA:-real}"
case "$KAFKA_MODE" in
real | inprocess) ;;
*) die "LETHE_TEST_KAFKA must be \"inprocess\" or unset, not \"$KAFKA_MODE\"" ;;
esac

say "checking prerequisites"
if [ "$KAFKA_MODE" = real ]; then
	check_prereqs go postgres java mvn
else
	check_prereqs go postgres
fi
ensure_temporal
if [ "$KAFKA_MODE" = real ]; then
	ensure_kafka_jars
fi
ensure_workflowcheck
ensure_helm
ensure_python_connector
ensure_chromium
build_lethe

show_stack_logs() {
	local f
	for f in "$STACK_LOG" "$TEST_DIR/postgres.log" "$TEST_DIR/kafka.log"; do
		[ -s "$f" ] || continue
		printf -- '--- last lines of %s\n' "$f" >&2
		tail -n 40 "$f" >&2
	done
}

STACK_PID=
stop_stack() {
	[ -n "$STACK_PID" ] || return 0
	if ! kill -0 "$STACK_PID" 2>/dev/null; then
		say "the test stack had already stopped:"
		show_stack_logs
		return 0
	fi
	say "stopping the test stack"
	kill -TERM "$STACK_PID" 2>/dev/null || true
	# lethe stack bounds each service's shutdown itself; this is the backstop.
	local deadline=$((SECONDS + 150))
	while kill -0 "$STACK_PID" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			say "the test stack did not stop; killing it"
			kill -KILL "$STACK_PID" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	wait "$STACK_PID" 2>/dev/null || true
}
trap stop_stack EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting PostgreSQL and Kafka (test stack, logs in $TEST_DIR)"
rm -f "$ENV_FILE"
./bin/lethe stack --dir "$TEST_DIR" --env-file "$ENV_FILE" --kafka "$KAFKA_MODE" \
	--kafka-jars "$KAFKA_JARS_DIR" >"$STACK_LOG" 2>&1 &
STACK_PID=$!

deadline=$((SECONDS + 300))
until [ -f "$ENV_FILE" ]; do
	if ! kill -0 "$STACK_PID" 2>/dev/null; then
		STACK_PID=
		show_stack_logs
		die "the test stack failed to start"
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		show_stack_logs
		die "the test stack was not ready within 5 minutes"
	fi
	sleep 0.5
done
# shellcheck source=/dev/null
source "$ENV_FILE"
export LETHE_KAFKA_JARS="$KAFKA_JARS_DIR"
export LETHE_TEMPORAL_BIN="$LETHE_ROOT/bin/temporal"
export LETHE_BIN="$LETHE_ROOT/bin/lethe" # the binary the process-level tests start and kill
say "test stack ready: PostgreSQL $LETHE_TEST_DATABASE_URL, Kafka $LETHE_TEST_KAFKA_BROKERS"

test_flags=(-count=1 -p 1 -timeout 40m)

if [ "$#" -gt 0 ]; then
	has_pkg=
	for arg in "$@"; do
		case "$arg" in
		. | ./* | ../* | github.com/lethe-privacy/lethe*) has_pkg=1 ;;
		esac
	done
	pkgs=()
	[ -n "$has_pkg" ] || pkgs=(./...)
	say "go test ${test_flags[*]} $* ${pkgs[*]}"
	go test "${test_flags[@]}" "$@" "${pkgs[@]}"
	exit
fi

failed=()
say "go vet ./..."
go vet ./... || failed+=("go vet")
if [ -n "$(find workflows -name '*.go' 2>/dev/null | head -n1)" ]; then
	say "workflowcheck ./workflows/..."
	./bin/workflowcheck ./workflows/... || failed+=("workflowcheck")
fi
say "go test ${test_flags[*]} ./..."
go test "${test_flags[@]}" ./... || failed+=("go test")
# The outside Go connector is its own module, so ./... above does not reach it.
say "go vet and go test ./... in deploy/examples/go-connector"
(cd deploy/examples/go-connector && go vet ./... && go test "${test_flags[@]}" ./...) || failed+=("go-connector example")
# The alert rules and the Grafana dashboard, through Prometheus's own rule and PromQL parsers
# (a module of its own: the Prometheus server's dependencies stay out of Lethe's go.mod); and
# promtool itself when it is installed.
say "go test in deploy/monitoring (alert rules, Grafana dashboard)"
(cd deploy/monitoring && go vet ./... && go test "${test_flags[@]}" ./...) || failed+=("monitoring rules")
if command -v promtool >/dev/null; then
	promtool check rules deploy/prometheus/lethe-rules.yml || failed+=("promtool check rules")
fi
# The HTTP API against its own document, from outside: bounded by max examples per operation.
deploy/schemathesis/run.sh || failed+=("schemathesis")

if [ "${#failed[@]}" -gt 0 ]; then
	say "FAILED: ${failed[*]}"
	exit 1
fi
say "all checks and tests passed"
