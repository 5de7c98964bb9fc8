#!/usr/bin/env bash
# End-to-end test of chat-cli: a real redis-server and two real chat-gateway
# processes on free loopback ports, two chat-cli processes (alice in --json
# mode on gw1, bob interactive on gw2), both fed through FIFOs.  Every process
# is stopped by PID; the whole run is bounded by a watchdog.  With CHAT_ADMIN,
# also what a chat-cli session shows of the operator commands.
#
# usage: test_cli.sh CHAT_CLI CHAT_GATEWAY [CHAT_ADMIN]
set -u

CLI=$1
GATEWAY=$2
ADMIN=${3:-}
SECRET=chat-cli-test-secret-0123456789abcdefghij # 40 bytes
DIR=$(mktemp -d /tmp/chat-cli-test.XXXXXX)
PIDS=()
FAILS=0
# Under a sanitizer build, make any report a distinct failing exit status.
export ASAN_OPTIONS=${ASAN_OPTIONS:-exitcode=86} LSAN_OPTIONS=${LSAN_OPTIONS:-exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:exitcode=86}
STEP=""

cleanup() {
    exec 7>&- 8>&- 9>&- 2>/dev/null
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 20); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'echo "FAIL: watchdog or signal during: $STEP"; exit 124' TERM INT

# Watchdog: the test never runs longer than 100 s.
(
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep 100 &
    s=$!
    wait "$s" && kill -TERM $$
) 2>/dev/null &
PIDS+=($!)

fail() {
    echo "FAIL: $STEP: $*"
    FAILS=$((FAILS + 1))
}

ok() {
    echo "ok: $STEP"
}

dump() {
    for f in "$@"; do
        echo "---- $f"
        cat -v "$DIR/$f" 2>/dev/null | tail -40
    done
}

# A loopback port nobody answers on right now.
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            echo $p
            return 0
        fi
    done
    return 1
}

# wait_for FILE FIXED-STRING [tenths of a second]
wait_for() {
    local n=${3:-100}
    for _ in $(seq "$n"); do
        grep -qF -- "$2" "$DIR/$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# wait_exit PID [tenths]: sets RC to the exit status, or returns 1 on timeout.
wait_exit() {
    local n=${2:-100}
    RC=timeout
    for _ in $(seq "$n"); do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1"
            RC=$?
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# run_bounded SECONDS CMD...: runs a short-lived command, killed when over time.
run_bounded() {
    local secs=$1
    shift
    "$@" <&0 &
    local pid=$!
    PIDS+=($pid)
    if ! wait_exit $pid $((secs * 10)); then
        kill -KILL $pid 2>/dev/null
        wait $pid 2>/dev/null
        RC=124
    fi
}

start_gateway() { # PORT NODE
    "$GATEWAY" --port "$1" --bind 127.0.0.1 --redis "redis://127.0.0.1:$RPORT/0" \
        --jwt-secret "$SECRET" --node-id "$2" --log-level warn >"$DIR/$2.log" 2>&1 &
    PIDS+=($!)
    eval "${2}_PID=$!"
    for _ in $(seq 100); do
        if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "FAIL: gateway $2 did not start"
    cat "$DIR/$2.log"
    exit 1
}

STEP="start redis"
RPORT=$(free_port) || { echo "FAIL: no free port"; exit 1; }
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$DIR" >"$DIR/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
    [ "$(redis-cli -p "$RPORT" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
[ "$(redis-cli -p "$RPORT" ping 2>/dev/null)" = PONG ] || { echo "FAIL: redis"; exit 1; }

STEP="start gateways"
P1=$(free_port)
start_gateway "$P1" gw1
P2=$(free_port)
while [ "$P2" = "$P1" ]; do P2=$(free_port); done
start_gateway "$P2" gw2
URL1=ws://127.0.0.1:$P1/ws
URL2=ws://127.0.0.1:$P2/ws

# ---- options and failures ----

STEP="--help exits 0 and documents the exit statuses"
run_bounded 5 "$CLI" --help >"$DIR/help.out" 2>&1
[ $RC = 0 ] && grep -q -- --nick "$DIR/help.out" &&
    grep -q '3 kicked by an operator' "$DIR/help.out" && ok || fail "rc=$RC"

STEP="usage errors exit 2"
run_bounded 5 "$CLI" --bogus >/dev/null 2>&1
r1=$RC
run_bounded 5 env -u CHAT_TOKEN "$CLI" --url "$URL1" >/dev/null 2>&1
r2=$RC
run_bounded 5 "$CLI" --nick a --token b >/dev/null 2>&1
r3=$RC
run_bounded 5 "$CLI" --nick a --room 'Bad Room' >/dev/null 2>&1
r4=$RC
[ "$r1$r2$r3$r4" = 2222 ] && ok || fail "rcs $r1 $r2 $r3 $r4"

STEP="bad --url exits 1 with one line on stderr"
DEAD=$(free_port)
run_bounded 15 "$CLI" --url "ws://127.0.0.1:$DEAD/ws" --token x </dev/null >/dev/null \
    2>"$DIR/bad1.err"
r1=$RC
run_bounded 15 "$CLI" --url "not-a-url" --token x </dev/null >/dev/null 2>"$DIR/bad2.err"
r2=$RC
run_bounded 15 "$CLI" --url "ws://127.0.0.1:$DEAD/ws" --nick x </dev/null >/dev/null \
    2>"$DIR/bad3.err"
r3=$RC
if [ "$r1$r2$r3" = 111 ] && [ "$(wc -l <"$DIR/bad1.err")" = 1 ] &&
    [ "$(wc -l <"$DIR/bad2.err")" = 1 ] && [ "$(wc -l <"$DIR/bad3.err")" = 1 ]; then ok; else
    fail "rcs $r1 $r2 $r3"
    dump bad1.err bad2.err bad3.err
fi

STEP="bad token exits 1 (HTTP 401)"
run_bounded 15 "$CLI" --url "$URL1" --token not.a.jwt </dev/null >/dev/null 2>"$DIR/tok.err"
[ $RC = 1 ] && grep -q 401 "$DIR/tok.err" && ok || { fail "rc=$RC"; dump tok.err; }

# ---- two clients ----

STEP="alice (--json, gw1) connects and joins"
mkfifo "$DIR/a.in" "$DIR/b.in"
"$CLI" --url "$URL1" --nick alice --json <"$DIR/a.in" >"$DIR/a.out" 2>"$DIR/a.err" &
A_PID=$!
PIDS+=($A_PID)
exec 7>"$DIR/a.in"
wait_for a.out '"type":"joined"' && ok || { fail "no joined"; dump a.out a.err; }

STEP="bob (interactive, gw2) connects and joins"
"$CLI" --url "$URL2" --nick bob <"$DIR/b.in" >"$DIR/b.out" 2>"$DIR/b.err" &
B_PID=$!
PIDS+=($B_PID)
exec 8>"$DIR/b.in"
wait_for b.out '* now in #general' && ok || { fail "no joined"; dump b.out b.err; }

STEP="bob hears his own online from a presence_batch, alice (--json) gets the batch"
wait_for b.out '* bob is online' && wait_for a.out '"type":"presence_batch","online":[{"id":"' &&
    ! grep -qF '"type":"online"' "$DIR/a.out" && ok || { fail "missing"; dump a.out b.out; }

STEP="a taken nickname exits 1"
run_bounded 15 "$CLI" --url "$URL1" --nick ALICE </dev/null >/dev/null 2>"$DIR/dup.err"
[ $RC = 1 ] && grep -q 409 "$DIR/dup.err" && ok || { fail "rc=$RC"; dump dup.err; }

STEP="plain line from bob reaches alice"
echo "hello from bob" >&8
wait_for a.out '"body":"hello from bob"' && ok || { fail "missing"; dump a.out b.out; }

STEP="raw frame from alice reaches bob as a readable line"
echo '{"type":"message","room":"general","kind":"text","body":"hi bob","id":"x1"}' >&7
wait_for b.out '#general <alice> hi bob' && wait_for a.out '"type":"ack","id":"x1"' && ok ||
    { fail "missing"; dump a.out b.out; }

STEP="bob /msg alice by nickname"
echo "/msg Alice psst alice" >&8
wait_for a.out '"body":"psst alice"' && wait_for b.out '(private to alice) <bob> psst alice' &&
    grep -F '"body":"psst alice"' "$DIR/a.out" | grep -q '"type":"private"' && ok ||
    { fail "missing"; dump a.out b.out; }

STEP="alice's users list has both; private to bob's id"
echo '{"type":"users","id":"u1"}' >&7
wait_for a.out '"type":"users","id":"u1"'
users=$(grep -F '"type":"users","id":"u1"' "$DIR/a.out")
bob_id=$(echo "$users" | grep -o '"id":"[A-Za-z0-9_-]*","name":"bob"' | sed 's/"id":"\([^"]*\)".*/\1/')
if echo "$users" | grep -q '"name":"alice"' && [ -n "$bob_id" ]; then
    echo "{\"type\":\"private\",\"to\":\"$bob_id\",\"kind\":\"text\",\"body\":\"secret\"}" >&7
    wait_for b.out '(private) <alice> secret' && ok || { fail "no private"; dump a.out b.out; }
else
    fail "users: $users"
fi

STEP="bob /users lists both"
echo "/users" >&8
wait_for b.out '* online users (2):' && wait_for b.out '    alice (id ' &&
    wait_for b.out "    bob (id $bob_id)" && ok || { fail "missing"; dump b.out; }

STEP="terminal escapes from a peer are shown escaped"
echo '{"type":"message","room":"general","kind":"text","body":"\u001b[31mred\u001b[0m\u0007"}' >&7
if wait_for b.out '<alice> \x1b[31mred\x1b[0m\x07' && ! grep -q $'\x1b' "$DIR/b.out" &&
    ! grep -q $'\x07' "$DIR/b.out"; then ok; else
    fail "raw escape in output"
    dump b.out
fi

STEP="errors and local checks print as ! lines"
printf '/bogus\n/join tech\n/room random\nnot a member here\n/join Bad!\n' >&8
wait_for b.out '! unknown command /bogus' && wait_for b.out '* now in #tech' &&
    wait_for b.out '! not_member: ' && wait_for b.out '! bad room name' && ok ||
    { fail "missing"; dump b.out; }

STEP="/history, /rooms, /search"
printf '/room general\n/history 3\n/rooms\n/search HI BOB\n' >&8
wait_for b.out '* history of #general: 3 message(s)' && wait_for b.out '    #tech (1 member) ' &&
    wait_for b.out '* search: 1 result(s)' && ok || { fail "missing"; dump b.out; }

STEP="/quit exits 0 after the close handshake; alice sees bob go"
echo "/quit" >&8
if wait_exit $B_PID 100 && [ $RC = 0 ]; then
    wait_for a.out "\"offline\":[{\"id\":\"$bob_id\"" && ok ||
        { fail "no offline of bob in alice's presence_batch"; dump a.out; }
else
    fail "rc=$RC"
    dump b.out b.err
fi
exec 8>&-

STEP="a line sent right before EOF is delivered, then exit 0"
printf 'last words\n' >"$DIR/c.in"
run_bounded 20 "$CLI" --url "$URL2" --nick carol <"$DIR/c.in" >"$DIR/c.out" 2>&1
[ $RC = 0 ] && wait_for a.out '"body":"last words"' && ok || { fail "rc=$RC"; dump c.out a.out; }

STEP="stdin from /dev/null: join, then exit 0"
run_bounded 20 "$CLI" --url "$URL1" --nick dave </dev/null >"$DIR/d.out" 2>&1
[ $RC = 0 ] && grep -qF '* now in #general' "$DIR/d.out" && ok || { fail "rc=$RC"; dump d.out; }

STEP="SIGINT closes cleanly: exit 0"
mkfifo "$DIR/f.in"
"$CLI" --url "$URL1" --nick frank <"$DIR/f.in" >"$DIR/f.out" 2>"$DIR/f.err" &
F_PID=$!
PIDS+=($F_PID)
exec 9>"$DIR/f.in"
if wait_for f.out '* now in #general' && kill -INT $F_PID && wait_exit $F_PID 100 &&
    [ $RC = 0 ]; then ok; else
    fail "rc=$RC"
    dump f.out f.err
fi
exec 9>&-

if [ -n "$ADMIN" ]; then
    admin() { run_bounded 15 "$ADMIN" "$@" --redis "redis://127.0.0.1:$RPORT/0" >>"$DIR/admin.out" 2>&1; }

    STEP="gina in #ops sees an operator's purge as a line"
    mkfifo "$DIR/g.in"
    "$CLI" --url "$URL1" --nick gina --room ops <"$DIR/g.in" >"$DIR/g.out" 2>"$DIR/g.err" &
    G_PID=$!
    PIDS+=($G_PID)
    exec 9>"$DIR/g.in"
    wait_for g.out '* now in #ops'
    echo "soon gone" >&9
    wait_for g.out '#ops <gina> soon gone'
    admin purge ops
    [ $RC = 0 ] && wait_for g.out '* an operator purged the history of #ops up to seq 1' && ok ||
        { fail "rc=$RC"; dump g.out admin.out; }

    STEP="delete-room: a line for gina, the frame for alice (--json)"
    admin delete-room ops
    [ $RC = 0 ] && wait_for g.out '* #ops was deleted by an operator' &&
        wait_for a.out '{"type":"room_deleted","room":"ops"}' && ok ||
        { fail "rc=$RC"; dump g.out a.out admin.out; }

    STEP="kick: exit 3 with the reason, no retry"
    gina_id=$(sed -n 's/^\* connected to .* as gina (id \([A-Za-z0-9_-]*\))$/\1/p' "$DIR/g.out")
    admin kick "$gina_id"
    if [ $RC = 0 ] && [ -n "$gina_id" ] && wait_exit $G_PID 100 && [ $RC = 3 ] &&
        grep -q 'closed by the server: 4003 kicked by an operator' "$DIR/g.err"; then ok; else
        fail "rc=$RC id=$gina_id"
        dump g.out g.err admin.out
    fi
    exec 9>&-
fi

STEP="server going away: exit 1 with a message"
mkfifo "$DIR/e.in"
"$CLI" --url "$URL2" --nick erin <"$DIR/e.in" >"$DIR/e.out" 2>"$DIR/e.err" &
E_PID=$!
PIDS+=($E_PID)
exec 9>"$DIR/e.in"
wait_for e.out '* now in #general'
kill -TERM "$gw2_PID"
if wait_exit $E_PID 150 && [ $RC = 1 ] && grep -q 'closed by the server: 1001' "$DIR/e.err"; then
    ok
else
    fail "rc=$RC"
    dump e.out e.err
fi
exec 9>&-

STEP="alice exits 0 on EOF"
exec 7>&-
if wait_exit $A_PID 100 && [ $RC = 0 ]; then ok; else
    fail "rc=$RC"
    dump a.err
fi

STEP="no sanitizer reports"
if grep -l 'Sanitizer\|runtime error:' "$DIR"/*.err "$DIR"/*.out 2>/dev/null; then
    fail "see above"
else
    ok
fi

if [ $FAILS -ne 0 ]; then
    echo "$FAILS check(s) failed"
    exit 1
fi
echo "all chat-cli checks passed"
exit 0
