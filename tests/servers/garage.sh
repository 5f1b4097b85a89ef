#!/usr/bin/env bash
# A three-node Garage cluster (replication factor 3) on loopback, for the remote-backend tests
# and the S3 benchmark: real S3, real replication, no mocks.
#
#   garage.sh start DIR      start it (DIR must not exist); prints KEY=VALUE lines:
#                            ENDPOINT, BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
#   garage.sh stop DIR       stop every node (SIGKILL, as in a crash)
#   garage.sh kill DIR N     stop node N (0-2) only
#   garage.sh restart DIR    start the stopped nodes again and wait until all three are up
#
# The binary is $GARAGE, else `garage` on PATH, else /var/tmp/cairn-tools/bin/garage (where
# scripts/setup-debian installs it).
set -euo pipefail

garage_bin() {
    if [[ -n "${GARAGE:-}" ]]; then echo "$GARAGE"; return; fi
    if command -v garage >/dev/null; then command -v garage; return; fi
    if [[ -x /var/tmp/cairn-tools/bin/garage ]]; then echo /var/tmp/cairn-tools/bin/garage; return; fi
    echo "garage.sh: no garage binary (set GARAGE, or run scripts/setup-debian)" >&2
    exit 2
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_node() {
    local dir=$1 n=$2
    setsid "$(garage_bin)" -c "$dir/n$n.toml" server >"$dir/n$n.log" 2>&1 </dev/null &
    echo $! >"$dir/n$n.pid"
}

# Waits until node 0 sees $2 nodes up with their status exchanged (a fresh cluster settles its
# connections for a moment, and a request then may find a peer "not connected").
wait_healthy() {
    local dir=$1 want=$2
    for _ in $(seq 200); do
        local up
        up=$(cli "$dir" status 2>/dev/null | awk '/HEALTHY NODES/ { h = 1; next } /FAILED NODES/ { h = 0 } h && /cargo:/ { n++ } END { print n + 0 }') || true
        [[ $up == "$want" ]] && return 0
        sleep 0.1
    done
    echo "garage.sh: the cluster in $dir did not come up with $want nodes" >&2
    exit 1
}

# Waits for every node to answer and connects node 0 to the others; sets NODE_IDS.
join() {
    local dir=$1
    NODE_IDS=()
    for n in 0 1 2; do
        local id=""
        for _ in $(seq 100); do
            id=$("$(garage_bin)" -c "$dir/n$n.toml" node id -q 2>/dev/null | cut -d@ -f1) && [[ -n $id ]] && break
            sleep 0.1
        done
        [[ -n $id ]] || { echo "garage.sh: node $n did not start, see $dir/n$n.log" >&2; exit 1; }
        NODE_IDS+=("$id")
    done
    # `node id` reads a local file: the daemons may not listen yet, so connecting is retried.
    for n in 1 2; do
        local joined=""
        for _ in $(seq 100); do
            cli "$dir" node connect "${NODE_IDS[$n]}@127.0.0.1:$(cat "$dir/n$n.rpc")" >/dev/null 2>&1 && joined=1 && break
            sleep 0.1
        done
        [[ -n $joined ]] || { echo "garage.sh: node 0 cannot reach node $n, see $dir/n*.log" >&2; exit 1; }
    done
}

cli() {
    local dir=$1
    shift
    "$(garage_bin)" -c "$dir/n0.toml" "$@"
}

start() {
    local dir=$1
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local secret
    secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    local s3_port
    for n in 0 1 2; do
        local rpc s3 admin
        rpc=$(free_port) s3=$(free_port) admin=$(free_port)
        [[ $n == 0 ]] && s3_port=$s3
        mkdir -p "$dir/n$n/meta" "$dir/n$n/data"
        cat >"$dir/n$n.toml" <<EOF
metadata_dir = "$dir/n$n/meta"
data_dir = "$dir/n$n/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
EOF
        chmod 600 "$dir/n$n.toml"
        echo "$rpc" >"$dir/n$n.rpc"
        start_node "$dir" $n
    done
    echo "$s3_port" >"$dir/s3.port"

    join "$dir"
    for n in 0 1 2; do
        cli "$dir" layout assign -z "dc$n" -c 1G "${NODE_IDS[$n]}" >/dev/null
    done
    cli "$dir" layout apply --version 1 >/dev/null
    wait_healthy "$dir" 3

    local key_info=""
    for _ in $(seq 100); do
        key_info=$(cli "$dir" key create cairn-test 2>/dev/null) && break
        sleep 0.1
    done
    local key_id secret_key
    key_id=$(awk -F': *' '/Key ID/ { print $2; exit }' <<<"$key_info")
    secret_key=$(awk -F': *' '/Secret key/ { print $2; exit }' <<<"$key_info")
    cli "$dir" bucket create cairn-test >/dev/null
    cli "$dir" bucket allow --read --write --owner cairn-test --key cairn-test >/dev/null
    cat <<EOF | tee "$dir/env"
ENDPOINT=http://127.0.0.1:$s3_port
BUCKET=cairn-test
AWS_ACCESS_KEY_ID=$key_id
AWS_SECRET_ACCESS_KEY=$secret_key
AWS_REGION=garage
EOF
}

stop_node() {
    local dir=$1 n=$2
    if [[ -f "$dir/n$n.pid" ]]; then
        # SIGKILL: a node that dies, as in a crash or a power cut, and is gone at once.
        local pid
        pid=$(cat "$dir/n$n.pid")
        kill -9 "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        rm -f "$dir/n$n.pid"
    fi
}

case "${1:-}" in
    start) start "$2" ;;
    stop) for n in 0 1 2; do stop_node "$2" $n; done ;;
    kill) stop_node "$2" "$3" ;;
    restart)
        for n in 0 1 2; do [[ -f "$2/n$n.pid" ]] || start_node "$2" $n; done
        join "$2"
        wait_healthy "$2" 3
        ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
