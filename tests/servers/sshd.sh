#!/usr/bin/env bash
# An OpenSSH server on loopback for the SFTP tests, with its own host key, one client key and
# an `ssh` wrapper that uses them (the SFTP backend runs `ssh` from PATH).
#
#   sshd.sh start DIR   start it (DIR must not exist); prints KEY=VALUE lines:
#                       PORT, USER, PATH_PREFIX (put it first in PATH), ROOT (a directory
#                       the server's user may write)
#   sshd.sh stop DIR    stop it
set -euo pipefail

start() {
    local dir=$1
    mkdir -p "$dir/bin" "$dir/root"
    dir=$(cd "$dir" && pwd)
    local port user
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    user=$(id -un)
    ssh-keygen -q -t ed25519 -N "" -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N "" -f "$dir/client_key"
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
    cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
EOF
    cat >"$dir/ssh_config" <<EOF
Host 127.0.0.1
    Port $port
    User $user
    IdentityFile $dir/client_key
    IdentitiesOnly yes
    UserKnownHostsFile $dir/known_hosts
    BatchMode yes
EOF
    cat >"$dir/bin/ssh" <<EOF
#!/bin/sh
exec /usr/bin/ssh -F $dir/ssh_config "\$@"
EOF
    chmod +x "$dir/bin/ssh"
    mkdir -p /run/sshd 2>/dev/null || true
    /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    for _ in $(seq 100); do
        "$dir/bin/ssh" 127.0.0.1 true 2>/dev/null && break
        sleep 0.1
    done
    "$dir/bin/ssh" 127.0.0.1 true || { echo "sshd.sh: the server did not answer, see $dir/sshd.log" >&2; exit 1; }
    cat <<EOF
PORT=$port
USER=$user
PATH_PREFIX=$dir/bin
ROOT=$dir/root
EOF
}

case "${1:-}" in
    start) start "$2" ;;
    stop) [[ -f "$2/sshd.pid" ]] && kill "$(cat "$2/sshd.pid")" 2>/dev/null; rm -f "$2/sshd.pid" ;;
    *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
