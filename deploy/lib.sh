# shellcheck shell=bash
# Helpers shared by deploy/cluster and deploy/test-cluster (sourced, not run).

# Prints the kernel start time of process PID (field 22 of /proc/PID/stat), which
# with the PID identifies one process for good; fails if there is no such process
# or it is a zombie (it has exited; only its status is left for the parent).
proc_starttime() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    local -a field
    # The command name (field 2) may contain spaces and parentheses.
    read -r -a field <<<"${stat##*) }"
    [ "${field[0]}" != Z ] || return 1
    echo "${field[19]}"
}

# Succeeds when something accepts connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# http_code CURL-ARGS...: the HTTP status, or 000 when there was no answer.
http_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@" 2>/dev/null || true
}

# haproxy_view STATS_PORT SERVER: HAProxy's state of backend server SERVER of the
# backend "gateways" (UP, DOWN, MAINT, ...) from the stats CSV; "unknown" when the
# stats page does not answer.
haproxy_view() {
    local csv
    csv=$(curl -s --max-time 2 "http://127.0.0.1:$1/;csv" 2>/dev/null) || {
        echo unknown
        return 0
    }
    awk -F, -v s="$2" '$1 == "gateways" && $2 == s { print $18; exit }' <<<"$csv"
}

# free_base_port OFFSET...: prints a port P in 20000..30990 (a multiple of 10) such
# that nothing listens on 127.0.0.1:P+OFFSET for any OFFSET; fails after 50 tries.
# Below 32768, where Linux's ephemeral range starts: a port in that range can be
# taken by any outgoing connection (a gateway's to Redis) between the check and
# the bind. For test and benchmark clusters of deploy/cluster.
free_base_port() {
    local p q busy
    for _ in $(seq 1 50); do
        p=$((20000 + (RANDOM % 1100) * 10))
        busy=0
        for q in "$@"; do
            if port_open $((p + q)); then
                busy=1
                break
            fi
        done
        if [ "$busy" = 0 ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
