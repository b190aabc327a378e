# bench/lib.sh — shell helpers shared by the bench scripts (sourced, not run).

log() { echo "  $*" >&2; }

# tree_pids PID — PID and all its descendants.
tree_pids() {
    local p
    echo "$1"
    for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree_pids "$p"; done
}

# cpu_ticks PID — utime + stime (clock ticks) summed over the process tree
# (each process's own fields include all its threads).
cpu_ticks() {
    local sum=0 p f
    for p in $(tree_pids "$1"); do
        f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        f=${f##*) }
        # fields after "comm": state is 3rd overall -> index 0 here; utime 14, stime 15
        set -- $f
        sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}

# mem_kb PID — sum of Pss (kB) over the process tree.
mem_kb() {
    local sum=0 p v
    for p in $(tree_pids "$1"); do
        v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# thread_ticks PID — "name=ticks" (utime + stime) of every thread of the process
# tree, to see where a phase's CPU went.
thread_ticks() {
    local p t f
    for p in $(tree_pids "$1"); do
        for t in /proc/"$p"/task/*; do
            f=$(cat "$t/stat" 2>/dev/null) || continue
            f=${f##*) }
            set -- $f
            printf '%s=%s ' "$(cat "$t/comm" 2>/dev/null)" $((${12} + ${13}))
        done
    done
}
