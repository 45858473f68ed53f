/* smoke.c: links libpoh_holdmetrics.so the way any C user would and runs the
 * README example through the C API. Built and run by `make test-capi`. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "poh_holdmetrics.h"

static int failures = 0;

/* remove_flat_dir deletes dir and the files in it (a data dir has no subdirectories). */
static void remove_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

#define CHECK(cond, ...)                          \
    do {                                          \
        if (!(cond)) {                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);         \
            fputc('\n', stderr);                  \
            failures++;                           \
        }                                         \
    } while (0)

int main(void) {
    poh_error err;
    char version[16];
    CHECK(poh_version(version, sizeof version, &err) == POH_OK, "version: %s", err.message);
    printf("libpoh_holdmetrics %s\n", version);

    /* README worked example, columnar: score 80 at now = 100. */
    int64_t start[] = {0, 50, 90, 120};
    int64_t end[] = {10, 0, 150, 0};
    uint8_t has_end[] = {1, 0, 1, 0};
    double weight[] = {2.0, 1.0, 1.0, 3.0};
    char tokens[] = "TTTT";
    int64_t token_off[] = {0, 1, 2, 3, 4};
    char holders[] = "alicebobbobcarol";
    int64_t holder_off[] = {0, 5, 8, 11, 16};
    poh_columns cols = {4, start, end, has_end, weight, tokens, 4, token_off, holders, 16, holder_off};
    double score = -1;
    CHECK(poh_score_columns(&cols, 100, &score, &err) == POH_OK, "score: %s", err.message);
    CHECK(score == 80.0, "score %g, want 80", score);

    /* A bad event: status, index, field and reason come back. */
    end[2] = 5;
    int rc = poh_score_columns(&cols, 100, &score, &err);
    CHECK(rc == POH_ERR_INVALID_EVENT && err.index == 2 && strcmp(err.field, "end") == 0 &&
              strcmp(err.reason, "end_before_start") == 0,
          "bad event: rc %d index %lld field %s reason %s", rc, (long long)err.index, err.field, err.reason);
    printf("rejected as expected: %s\n", err.message);
    end[2] = 150;

    poh_handle agg = 0;
    CHECK(poh_aggregator_new(0, 0, &agg, &err) == POH_OK && agg != 0, "new: %s", err.message);
    int64_t accepted = 0;
    CHECK(poh_aggregator_record_columns(agg, &cols, 100, 0, &accepted, &err) == POH_OK && accepted == 4,
          "record: %s", err.message);
    CHECK(poh_aggregator_record(agg, "T", 1, "dave", 4, 0, 100, 1, 0.5, POH_NOW, &err) == POH_OK, "record one: %s",
          err.message);

    poh_handle res = 0;
    CHECK(poh_aggregator_top_n(agg, 2, 100, NULL, 0, &res, &err) == POH_OK, "top_n: %s", err.message);
    int64_t rows = 0, bytes = 0;
    CHECK(poh_result_size(res, &rows, &bytes, &err) == POH_OK && rows == 2, "size: rows %lld", (long long)rows);
    poh_stat stats[2];
    char ids[64];
    CHECK(poh_result_stats(res, stats, 2, ids, sizeof ids, &err) == POH_OK, "stats: %s", err.message);
    for (int i = 0; i < rows; i++) {
        printf("top %d: %.*s score %g\n", i + 1, (int)stats[i].id_len, ids + stats[i].id_offset, stats[i].score);
    }
    /* Closed holds count in full: bob has 50 (open to 100) + 60 = 110. */
    CHECK(rows == 2 && stats[0].score == 110.0 && memcmp(ids + stats[0].id_offset, "bob", 3) == 0, "top row");
    CHECK(poh_free(res, &err) == POH_OK, "free result");

    poh_handle m = 0;
    CHECK(poh_aggregator_metrics_text(agg, &m, &err) == POH_OK, "metrics: %s", err.message);
    CHECK(poh_result_size(m, NULL, &bytes, &err) == POH_OK && bytes > 0, "metrics size");
    char text[16384];
    CHECK(bytes < (int64_t)sizeof text && poh_result_text(m, text, sizeof text, &err) == POH_OK, "metrics text");
    CHECK(strstr(text, "poh_hold_events_total{result=\"accepted\"} 5") != NULL, "metrics content:\n%s", text);
    CHECK(poh_free(m, &err) == POH_OK, "free metrics");

    /* No history: a window query is refused with its own status. */
    poh_window win = {0, 60};
    rc = poh_aggregator_top_n_window(agg, 2, 100, NULL, 0, &win, &res, &err);
    CHECK(rc == POH_ERR_NO_HISTORY, "window query without history: rc %d", rc);
    printf("refused as expected: %s\n", err.message);

    CHECK(poh_free(agg, &err) == POH_OK, "free aggregator");

    /* Windows: the README example clipped to [0, 60) at now = 100 scores
     * alice 20 + bob (50..60) 10 = 30; the TWAB is 30 / 60 = 0.5. */
    CHECK(poh_score_columns_window(&cols, 100, &win, &score, &err) == POH_OK && score == 30.0,
          "windowed score %g: %s", score, err.message);
    double twab = -1;
    CHECK(poh_twab_columns(&cols, 100, &win, &twab, &err) == POH_OK && twab == 0.5, "twab %g: %s", twab, err.message);
    poh_window empty = {60, 60};
    rc = poh_twab_columns(&cols, 100, &empty, &twab, &err);
    CHECK(rc == POH_ERR_INVALID_EVENT && strcmp(err.field, "window") == 0 && strcmp(err.reason, "empty_window") == 0,
          "zero-length twab: rc %d field %s reason %s", rc, err.field, err.reason);
    printf("rejected as expected: %s\n", err.message);

    /* An aggregator with a campaign window [0, 60) and history. */
    poh_aggregator_options opts;
    memset(&opts, 0, sizeof opts);
    opts.has_window = 1;
    opts.window = win;
    opts.history = 1;
    agg = 0;
    CHECK(poh_aggregator_new2(&opts, &agg, &err) == POH_OK && agg != 0, "new2: %s", err.message);
    CHECK(poh_aggregator_record_columns(agg, &cols, 100, 0, &accepted, &err) == POH_OK, "record: %s", err.message);
    CHECK(poh_aggregator_top_n(agg, 1, 100, NULL, 0, &res, &err) == POH_OK, "campaign top_n: %s", err.message);
    CHECK(poh_result_stats(res, stats, 2, ids, sizeof ids, &err) == POH_OK && stats[0].score == 20.0 &&
              memcmp(ids + stats[0].id_offset, "alice", 5) == 0,
          "campaign top row %g", stats[0].score);
    poh_free(res, NULL);
    /* Any other window, from history: [90, 200) at 200 is carol (120..200) x 3 = 240,
     * ahead of bob 110 + 60 = 170. */
    poh_window later = {90, 200};
    CHECK(poh_aggregator_top_n_window(agg, 1, 200, NULL, 0, &later, &res, &err) == POH_OK, "top_n_window: %s",
          err.message);
    CHECK(poh_result_stats(res, stats, 2, ids, sizeof ids, &err) == POH_OK && stats[0].score == 240.0 &&
              memcmp(ids + stats[0].id_offset, "carol", 5) == 0,
          "window top row %g", stats[0].score);
    printf("window [90, 200) top: %.*s score %g\n", (int)stats[0].id_len, ids + stats[0].id_offset, stats[0].score);
    poh_free(res, NULL);

    /* Partial mode: the valid rows go in, every rejected index comes back. */
    end[2] = 5;
    int64_t rejected[4], nrej = 0;
    rc = poh_aggregator_record_partial(agg, &cols, 100, &accepted, rejected, 4, &nrej, &err);
    CHECK(rc == POH_ERR_INVALID_EVENT && accepted == 3 && nrej == 1 && rejected[0] == 2,
          "partial: rc %d accepted %lld rejected %lld", rc, (long long)accepted, (long long)nrej);
    end[2] = 150;
    CHECK(poh_free(agg, &err) == POH_OK, "free aggregator 2");
    CHECK(poh_free(agg, &err) == POH_ERR_BAD_HANDLE, "double free must be POH_ERR_BAD_HANDLE");
    CHECK(poh_aggregator_record(agg, "T", 1, "a", 1, 0, 1, 1, 1.0, 10, NULL) == POH_ERR_BAD_HANDLE, "use after free");
    CHECK(poh_live_handles() == 0, "handles left: %lld", (long long)poh_live_handles());

    /* Durable: record into a data dir, free (flush + unlock), reopen, find it again;
     * a second open while the first is live is POH_ERR_LOCKED. */
    char dir[] = "/tmp/poh-smoke-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    poh_store_options so;
    memset(&so, 0, sizeof so);
    so.fsync = POH_FSYNC_ALWAYS;
    poh_handle dur = 0, dur2 = 0;
    CHECK(poh_aggregator_open(dir, (int64_t)strlen(dir), NULL, &so, &dur, &err) == POH_OK, "open: %s", err.message);
    CHECK(poh_aggregator_record_columns(dur, &cols, 100, 0, &accepted, &err) == POH_OK, "durable record: %s",
          err.message);
    CHECK(poh_aggregator_open(dir, (int64_t)strlen(dir), NULL, &so, &dur2, &err) == POH_ERR_LOCKED,
          "second open must be POH_ERR_LOCKED");
    printf("locked as expected: %s\n", err.message);
    poh_stat pair, before;
    int found = 0;
    CHECK(poh_aggregator_pair(dur, "T", 1, "bob", 3, 100, &before, &found, &err) == POH_OK && found &&
              before.events == 2,
          "pair (bob, T): found %d events %lld", found, (long long)before.events);
    CHECK(poh_free(dur, &err) == POH_OK, "free durable: %s", err.message);
    CHECK(poh_aggregator_open(dir, (int64_t)strlen(dir), NULL, &so, &dur, &err) == POH_OK, "reopen: %s",
          err.message);
    found = 0;
    CHECK(poh_aggregator_pair(dur, "T", 1, "bob", 3, 100, &pair, &found, &err) == POH_OK && found &&
              memcmp(&pair, &before, sizeof pair) == 0,
          "reopened pair (bob, T): found %d score %g, before %g", found, pair.score, before.score);
    printf("reopened %s: bob score %g\n", dir, pair.score);
    CHECK(poh_free(dur, &err) == POH_OK, "free reopened: %s", err.message);
    remove_flat_dir(dir);
    CHECK(poh_live_handles() == 0, "handles left: %lld", (long long)poh_live_handles());

    if (failures) {
        fprintf(stderr, "smoke: %d failed\n", failures);
        return 1;
    }
    printf("smoke: 1 passed, 0 failed\n");
    return 0;
}
