# bench/lib.sh -- helpers shared by bench/run.sh and bench/reload.sh
# (sourced; they define log and die first).

# wrk duration -> seconds, for the outer `timeout` guard.
duration_secs() {
    local d=$1
    case $d in
        *ms) echo 1 ;;
        *s) echo "${d%s}" ;;
        *m) echo $(( ${d%m} * 60 )) ;;
        *h) echo $(( ${d%h} * 3600 )) ;;
        *) echo "$d" ;;
    esac
}

descendants() {  # all descendant PIDs of $1 (not $1 itself)
    local parent=$1 kids k
    kids=$(ps -o pid= --ppid "$parent" 2>/dev/null || true)
    for k in $kids; do
        echo "$k"
        descendants "$k"
    done
}

stop_pids() {  # TERM the given PIDs, wait up to ~5 s, then KILL what is left
    local -a pids=("$@") alive=()
    local p i
    ((${#pids[@]})) || return 0
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        alive=()
        for p in "${pids[@]}"; do
            kill -0 "$p" 2>/dev/null && alive+=("$p")
        done
        ((${#alive[@]})) || break
        sleep 0.1
    done
    for p in "${alive[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port() {  # wait_port PORT PID NAME -> 0 when accepting, 1 if it died / timed out
    local port=$1 pid=$2 name=$3 i
    for ((i = 0; i < 150; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) exited during startup"
            return 1
        fi
        port_open "$port" && return 0
        sleep 0.1
    done
    log "$name did not accept on 127.0.0.1:$port within 15 s"
    return 1
}
