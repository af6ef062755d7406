#!/bin/sh
# P8's curl row: time to connect to a name whose ::1 black-holes (a listener with a full accept
# queue drops SYNs) and whose 127.0.0.1 listens, in a network and mount namespace of this
# script's own ("dual.test" comes from its own /etc/hosts). Usage: unshare -n -m sh bench/p8_curl.sh [rounds]
set -eu
rounds=${1:-5}
ip link set lo up
hosts=$(mktemp)
printf '::1 dual.test\n127.0.0.1 dual.test\n' > "$hosts"
mount --make-rprivate /
mount --bind "$hosts" /etc/hosts
exec /usr/bin/python3 "$(dirname "$0")/p8_curl.py" "$rounds"
