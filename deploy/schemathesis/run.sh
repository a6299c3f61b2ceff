#!/usr/bin/env bash
# Fuzz the live HTTP API against its own contract, schemas/openapi.yaml, with schemathesis
# (every check: status codes, headers, response schemas, Allow on 405, negative and positive
# data, auth). Starts `./bin/lethe dev` on free ports in a temporary directory, waits for
# /readyz, runs schemathesis with the demo tenant's admin token and stops the stack. Exits
# non-zero on any failure; the report names the operation, the check and a curl line to
# reproduce it.
#
# deploy/test.sh runs it after the Go tests; run it alone after `go build -o bin/lethe ./cmd/lethe`
# (and with ./bin/temporal built, as deploy/dev.sh does). 30 to 60 seconds on 2 shared
# cores: the stack starts in about 7, schemathesis runs about 2,500 cases in 25 to 45.
#
# Environment:
#   LETHE_SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (default 100)
#   LETHE_SCHEMATHESIS_SEED          the generator's seed (default fixed, so CI is repeatable)
#   LETHE_SCHEMATHESIS_ARGS          more schemathesis arguments, e.g. "--phases fuzzing"

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ensure_schemathesis() {
	local out
	say "preparing schemathesis's virtualenv (.lethe/cache)"
	out="$(deploy/venv.sh deploy/schemathesis/requirements.txt "$LETHE_ROOT/.lethe/cache/schemathesis-venv")" ||
		die "making schemathesis's virtualenv failed (see above)"
	SCHEMATHESIS="$(dirname "$(printf '%s\n' "$out" | tail -n1)")/schemathesis"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

[ -x bin/lethe ] || die "bin/lethe is missing: go build -o bin/lethe ./cmd/lethe"
[ -x bin/temporal ] || die "bin/temporal is missing: run deploy/dev.sh once, which builds it"
ensure_schemathesis

mkdir -p .lethe
dir="$(mktemp -d "$LETHE_ROOT/.lethe/schemathesis.XXXXXX")"
chmod 755 "$dir" # PostgreSQL may run as its own user
http="127.0.0.1:$(free_port)"
DEV_PID=
stop_dev() {
	if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
		kill -TERM "$DEV_PID" 2>/dev/null || true
		local deadline=$((SECONDS + 60))
		while kill -0 "$DEV_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
		kill -KILL "$DEV_PID" 2>/dev/null || true
		wait "$DEV_PID" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap stop_dev EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting lethe dev on $http (state in $dir)"
# LETHE_KAFKA_BROKERS unset: the in-process broker, so the run touches no shared cluster.
env -u LETHE_KAFKA_BROKERS ./bin/lethe dev --dir "$dir" --http "$http" \
	--postgres-port "$(free_port)" --kafka-port "$(free_port)" \
	--temporal-port "$(free_port)" --temporal-ui-port "$(free_port)" >"$dir/dev.log" 2>&1 &
DEV_PID=$!
deadline=$((SECONDS + 180))
until curl -fsS -o /dev/null "http://$http/readyz" 2>/dev/null; do
	if ! kill -0 "$DEV_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
		tail -n 40 "$dir/dev.log" >&2
		die "lethe dev did not become ready within 3 minutes"
	fi
	sleep 0.5
done
token="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin_token"])' "$dir/dev-secrets.json")"

say "schemathesis --checks all against http://$http (schemas/openapi.yaml)"
# shellcheck disable=SC2086 # LETHE_SCHEMATHESIS_ARGS is a list of arguments
"$SCHEMATHESIS" --config-file deploy/schemathesis/schemathesis.toml run schemas/openapi.yaml --url "http://$http" \
	--header "Authorization: Bearer $token" \
	--checks all --workers 1 \
	--max-examples "${LETHE_SCHEMATHESIS_MAX_EXAMPLES:-100}" \
	--seed "${LETHE_SCHEMATHESIS_SEED:-20261201}" \
	--request-timeout 30 --output-sanitize true \
	${LETHE_SCHEMATHESIS_ARGS:-}
