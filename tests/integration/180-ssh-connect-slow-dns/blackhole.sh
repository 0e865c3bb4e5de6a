# blackhole.sh DRRUN - inside `unshare -mn`: point /etc/resolv.conf (a bind
# mount, private to this namespace) at a UDP socket on loopback that reads
# queries and never answers, then run inner.lua and cancel.lua with DRRUN.
set -u
drrun=$1
printf 'nameserver 127.0.0.1\noptions timeout:3 attempts:1\n' > resolv.conf
mount --bind "$PWD/resolv.conf" /etc/resolv.conf || exit 90
ip link set lo up || exit 91
rm -f blackhole.ready
python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
open("blackhole.ready", "w").close()
while True:
    s.recvfrom(4096)
' &
bh=$!
for _ in $(seq 100); do [ -e blackhole.ready ] && break; sleep 0.05; done
[ -e blackhole.ready ] || exit 92
# each runbook: its exit status, stderr and journal as NAME.rc, NAME.err
# and NAME.jsonl, for the outer runbook to read
for rb in inner cancel; do
	rm -rf "$rb-state"
	"$drrun" run --state-dir "$rb-state" "$rb.lua" > "$rb.out" 2> "$rb.err"
	echo $? > "$rb.rc"
	cat "$rb-state"/runs/*/journal.jsonl > "$rb.jsonl" 2>/dev/null
done
kill "$bh"
