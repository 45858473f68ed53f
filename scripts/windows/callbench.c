/* callbench.c: the per-call cost of the C API, the same program for Linux and for
 * Windows (mingw-w64; run under Wine by callbench.sh, the numbers in docs/windows.md).
 *
 *   record_event  poh_record_event into an in-memory aggregator (1000 holders, closed holds)
 *   score_4       poh_score of the README's 4-row batch (per call: mostly the crossing)
 *   score_10k     poh_score of 10,000 rows (per row: the work itself)
 *
 * Each is timed ROUNDS times; printed is the median, in ns per call (per row for
 * score_10k). Usage: callbench [label]. */
#ifndef _WIN32
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c11 */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poh_holdmetrics.h"

#ifdef _WIN32
#include <windows.h>
static double now_ns(void) {
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart * 1e9 / (double)f.QuadPart;
}
#else
#include <time.h>
static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}
#endif

#define ROUNDS 7

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v) {
    qsort(v, ROUNDS, sizeof *v, cmp_double);
    return v[ROUNDS / 2];
}

static void fail(const char *what, poh_error *err) {
    fprintf(stderr, "callbench: %s: %s\n", what, err->message);
    exit(1);
}

int main(int argc, char **argv) {
    const char *label = argc > 1 ? argv[1] : "";
    poh_error err;
    double t[ROUNDS];

    poh_handle agg = 0;
    if (poh_aggregator_new(NULL, &agg, &err) != POH_OK) fail("aggregator_new", &err);
    char holder[16];
    const int calls = 20000;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (int i = 0; i < calls; i++) {
            int n = snprintf(holder, sizeof holder, "h%d", i % 1000);
            if (poh_record_event(agg, "T", 1, holder, n, i, i + 10, 1, 1.0, 1000000, &err) != POH_OK)
                fail("record_event", &err);
        }
        t[r] = (now_ns() - t0) / calls;
    }
    printf("%s record_event %.0f ns/call\n", label, median(t));
    poh_free(agg, NULL);

    int64_t start[] = {0, 50, 90, 120}, end[] = {10, 0, 150, 0};
    uint8_t has_end[] = {1, 0, 1, 0};
    double weight[] = {2.0, 1.0, 1.0, 3.0};
    poh_columns cols = POH_INIT(poh_columns);
    cols.n = 4;
    cols.start = start;
    cols.end = end;
    cols.has_end = has_end;
    cols.weight = weight;
    poh_score_options so = POH_INIT(poh_score_options);
    so.now = 100;
    poh_score_result sr = POH_INIT(poh_score_result);
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (int i = 0; i < calls; i++)
            if (poh_score(&cols, &so, &sr, &err) != POH_OK) fail("score", &err);
        t[r] = (now_ns() - t0) / calls;
    }
    if (sr.score != 80.0) fprintf(stderr, "callbench: score %g, want 80\n", sr.score);
    printf("%s score_4 %.0f ns/call\n", label, median(t));

    enum { N = 10000 };
    static int64_t bs[N], be[N];
    static double bw[N];
    for (int i = 0; i < N; i++) {
        bs[i] = i;
        be[i] = i + 100;
        bw[i] = 1.0 + (i % 7);
    }
    poh_columns big = POH_INIT(poh_columns);
    big.n = N;
    big.start = bs;
    big.end = be;
    big.weight = bw;
    so.now = 1000000;
    const int bcalls = 200;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (int i = 0; i < bcalls; i++)
            if (poh_score(&big, &so, &sr, &err) != POH_OK) fail("score 10k", &err);
        t[r] = (now_ns() - t0) / ((double)bcalls * N);
    }
    printf("%s score_10k %.2f ns/row\n", label, median(t));
    return 0;
}
