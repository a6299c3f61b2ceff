# shellcheck shell=bash
# Shared by deploy/dev.sh and deploy/test.sh: prerequisite checks with install hints, and the
# pinned tools they build or fetch on first use. Source it; it changes to the repository root.

set -euo pipefail

LETHE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$LETHE_ROOT"

# Pinned versions. The Temporal CLI v1.9.x cannot be built with `go install` (its go.mod has a
# replace directive); v1.5.1 can, and its dev server serves what Lethe uses.
TEMPORAL_CLI_VERSION=v1.5.1
KAFKA_VERSION=3.9.1 # keep in step with deploy/kafka/pom.xml
WORKFLOWCHECK_VERSION=v0.6.0
HELM_VERSION=v3.22.0
KAFKA_JARS_DIR="$LETHE_ROOT/.lethe/cache/kafka-$KAFKA_VERSION"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# check_prereqs TOOL... checks every named tool (go, java, mvn, postgres) and reports all that
# are missing at once, each with how to install it.
check_prereqs() {
	local missing=() tool
	for tool in "$@"; do
		case "$tool" in
		go)
			if ! command -v go >/dev/null; then
				missing+=("go: install Go $(go_wanted) or newer from https://go.dev/dl/ (and put its bin directory on PATH)")
			fi
			;;
		java)
			if ! command -v java >/dev/null; then
				missing+=("java: install a Java 17 runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; Fedora: dnf install java-17-openjdk-headless; macOS: brew install openjdk@17)")
			elif [ "$(java_major)" -lt 11 ]; then # an unreadable version passes: java will say
				missing+=("java: found Java $(java_major), Kafka $KAFKA_VERSION needs 11 or newer: install a Java 17 runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)")
			fi
			;;
		mvn)
			if ! command -v mvn >/dev/null; then
				missing+=("mvn: install Apache Maven, which fetches the Kafka broker jars (Debian/Ubuntu: apt-get install maven; Fedora: dnf install maven; macOS: brew install maven)")
			fi
			;;
		postgres)
			if ! find_postgres; then
				missing+=("initdb/pg_ctl/postgres: install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; macOS: brew install postgresql@15)")
			fi
			;;
		*) die "check_prereqs: unknown tool $tool" ;;
		esac
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		printf 'error: missing prerequisites:\n' >&2
		printf '  - %s\n' "${missing[@]}" >&2
		exit 1
	fi
}

go_wanted() { sed -n 's/^go \([0-9.]*\).*/\1/p' "$LETHE_ROOT/go.mod"; }

java_major() {
	# "17.0.9" -> 17, "1.8.0_392" -> 8
	local v
	v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\.\{0,1\}\([0-9]*\).*/\1 \2/p' | head -n1 |
		awk '{ print ($1 == 1 ? $2 : $1) }')"
	echo "${v:-99}"
}

# find_postgres puts the PostgreSQL server binaries on PATH: Debian and Fedora install them
# under a versioned directory that is not on PATH by default. The newest version wins.
find_postgres() {
	if command -v initdb >/dev/null && command -v pg_ctl >/dev/null && command -v postgres >/dev/null; then
		return 0
	fi
	local dir
	dir="$(ls -d /usr/lib/postgresql/*/bin /usr/pgsql-*/bin 2>/dev/null | sort -V | tail -n1 || true)"
	if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
		export PATH="$dir:$PATH"
		return 0
	fi
	return 1
}

# built_version BINARY MODULE prints the version of MODULE that BINARY was built from.
built_version() {
	go version -m "$1" 2>/dev/null | awk -v m="$2" '$1 == "mod" && $2 == m { print $3 }'
}

ensure_temporal() {
	if [ "$(built_version bin/temporal github.com/temporalio/cli)" = "$TEMPORAL_CLI_VERSION" ]; then
		return 0
	fi
	say "building the Temporal CLI ${TEMPORAL_CLI_VERSION#v} into ./bin (first run only, about 2-3 minutes)"
	GOBIN="$LETHE_ROOT/bin" go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION"
}

ensure_kafka_jars() {
	if [ -f "$KAFKA_JARS_DIR/kafka_2.13-$KAFKA_VERSION.jar" ]; then
		return 0
	fi
	say "fetching the Apache Kafka $KAFKA_VERSION jars with Maven into ./.lethe/cache (first run only)"
	local tmp="$KAFKA_JARS_DIR.partial"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	# A half-finished download never looks like a complete one: it lands under .partial first.
	mvn -q -B -Dstyle.color=never -f deploy/kafka/pom.xml dependency:copy-dependencies \
		-DoutputDirectory="$tmp" -DincludeScope=runtime
	[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "Maven did not fetch kafka_2.13-$KAFKA_VERSION.jar (check deploy/kafka/pom.xml)"
	rm -rf "$KAFKA_JARS_DIR"
	mv "$tmp" "$KAFKA_JARS_DIR"
}

# ensure_workflowcheck builds Temporal's determinism checker. Pinned (v0.6.0 was the latest
# and builds with this Go) so a new release cannot change the verdict under us.
ensure_workflowcheck() {
	if [ "$(built_version bin/workflowcheck go.temporal.io/sdk/contrib/tools/workflowcheck)" = "$WORKFLOWCHECK_VERSION" ]; then
		return 0
	fi
	say "building workflowcheck ${WORKFLOWCHECK_VERSION} into ./bin (first run only)"
	GOBIN="$LETHE_ROOT/bin" go install "go.temporal.io/sdk/contrib/tools/workflowcheck@$WORKFLOWCHECK_VERSION"
}

# ensure_helm builds the pinned Helm CLI, which renders the chart in deploy/helm for its test
# (about two minutes the first time), and exports LETHE_HELM.
ensure_helm() {
	if [ "$(built_version bin/helm helm.sh/helm/v3)" != "$HELM_VERSION" ]; then
		say "building helm ${HELM_VERSION} into ./bin (first run only)"
		GOBIN="$LETHE_ROOT/bin" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
	fi
	LETHE_HELM="$LETHE_ROOT/bin/helm"
	export LETHE_HELM
}

# ensure_python_connector prepares the example Python connector's virtualenv (its tests run it)
# and exports LETHE_PYTHON, the interpreter they use.
ensure_python_connector() {
	local setup=deploy/examples/python-connector/setup.sh out
	[ -f "$setup" ] || return 0
	say "preparing the example Python connector's virtualenv (.lethe/cache)"
	out="$(bash "$setup")" || die "$setup failed (see above)"
	LETHE_PYTHON="$(printf '%s\n' "$out" | tail -n1)"
	export LETHE_PYTHON
}

# ensure_chromium makes sure Debian's Chromium is there for the MyAccount browser test; the test
# never downloads a browser of its own.
ensure_chromium() {
	if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
		return 0
	fi
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "installing Chromium from Debian's packages for the browser test (first run only)"
		apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 ||
			die "installing chromium failed; install it yourself: apt-get install chromium"
		return 0
	fi
	say "Chromium is missing: the browser test will be skipped (install it: apt-get install chromium)"
}

build_lethe() {
	say "building ./bin/lethe"
	go build -o bin/lethe ./cmd/lethe
}
