/*
 * bench/cpu.h — the CPU time (user + system) this process has used, in seconds: what the
 * benchmark programs divide by the work they did.
 */
#ifndef RTCD_BENCH_CPU_H
#define RTCD_BENCH_CPU_H

#include <sys/resource.h>

static inline double cpu_s(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

#endif
