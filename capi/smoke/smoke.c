/* smoke.c: links libpoh_holdmetrics.so the way any C user would and runs the
 * README example through the C API (version 0.2). Built and run by
 * `make test-capi`. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "poh_holdmetrics.h"

#ifdef _WIN32
#include <direct.h> /* _mkdir */
#include <io.h>     /* _mktemp_s */
/* mingw has no mkdtemp: a name made unique from the template's XXXXXX, then created. */
static char *mkdtemp(char *tmpl) {
    return _mktemp_s(tmpl, strlen(tmpl) + 1) == 0 && _mkdir(tmpl) == 0 ? tmpl : NULL;
}
#endif

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

/* query_top runs q and reads its result's columns (at most cap rows) into
 * stats (id_offset / id_len into ids) the way a C user reads them; it
 * returns the row count, or -1 on failure. The result handle is freed. */
static int64_t query_top(poh_handle agg, poh_query_options *q, poh_stat *stats, int64_t cap, char *ids,
                         int64_t ids_cap, poh_error *err) {
    poh_query_result qr = POH_INIT(poh_query_result);
    if (poh_query(agg, q, &qr, err) != POH_OK) return -1;
    int64_t rows = 0, bytes = 0;
    double score[8];
    int64_t total_seconds[8], events[8], open_holds[8], tokens[8], updated_at[8], offsets[9];
    poh_stat_columns cols = POH_INIT(poh_stat_columns);
    cols.rows_cap = cap;
    cols.ids_cap = ids_cap;
    cols.score = score;
    cols.total_seconds = total_seconds;
    cols.events = events;
    cols.open_holds = open_holds;
    cols.tokens = tokens;
    cols.updated_at = updated_at;
    cols.id_offsets = offsets;
    cols.ids = ids;
    int ok = cap <= 8 && qr.result != 0 && poh_result_size(qr.result, &rows, &bytes, err) == POH_OK &&
             rows == qr.rows && bytes == qr.id_bytes && rows <= cap && poh_result_stats(qr.result, &cols, err) == POH_OK;
    if (qr.result != 0 && poh_free(qr.result, NULL) != POH_OK) ok = 0;
    for (int64_t i = 0; ok && i < rows; i++) {
        poh_stat st = {score[i], total_seconds[i], events[i], open_holds[i], tokens[i], updated_at[i], offsets[i],
                       offsets[i + 1] - offsets[i]};
        stats[i] = st;
    }
    if (ok && rows > 0 && memcmp(&qr.first, &stats[0], sizeof qr.first) != 0) ok = 0; /* first = row 0 */
    return ok ? rows : -1;
}

int main(void) {
    poh_error err;
    char version[16];
    CHECK(poh_version(version, sizeof version, &err) == POH_OK, "version: %s", err.message);
    CHECK(strncmp(version, "0.2.", 4) == 0, "version %s, want 0.2.x", version);
    printf("libpoh_holdmetrics %s\n", version);
    int64_t live0 = poh_live_handles();

    /* README worked example, columnar: score 80 at now = 100. */
    int64_t start[] = {0, 50, 90, 120};
    int64_t end[] = {10, 0, 150, 0};
    uint8_t has_end[] = {1, 0, 1, 0};
    double weight[] = {2.0, 1.0, 1.0, 3.0};
    char tokens[] = "TTTT";
    int64_t token_off[] = {0, 1, 2, 3, 4};
    char holders[] = "alicebobbobcarol";
    int64_t holder_off[] = {0, 5, 8, 11, 16};
    poh_columns cols = POH_INIT(poh_columns);
    cols.n = 4;
    cols.start = start;
    cols.end = end;
    cols.has_end = has_end;
    cols.weight = weight;
    cols.token_data = tokens;
    cols.token_data_len = 4;
    cols.token_offsets = token_off;
    cols.holder_data = holders;
    cols.holder_data_len = 16;
    cols.holder_offsets = holder_off;
    poh_score_options so = POH_INIT(poh_score_options);
    so.now = 100;
    poh_score_result sr = POH_INIT(poh_score_result);
    CHECK(poh_score(&cols, &so, &sr, &err) == POH_OK, "score: %s", err.message);
    CHECK(sr.score == 80.0, "score %g, want 80", sr.score);

    /* The same as packed rows (the layout of ready-made events, no ids). */
    poh_event evs[] = {{0, 10, 2.0}, {50, -1, 1.0}, {90, 150, 1.0}, {120, -1, 3.0}};
    poh_columns packed = POH_INIT(poh_columns);
    packed.n = 4;
    packed.rows = evs;
    sr.score = -1;
    CHECK(poh_score(&packed, &so, &sr, &err) == POH_OK && sr.score == 80.0, "packed score %g: %s", sr.score,
          err.message);
    /* NULL options: every default, now = the wall clock. */
    CHECK(poh_score(&packed, NULL, &sr, &err) == POH_OK && sr.score > 1.7e9, "NULL options: %g", sr.score);

    /* A bad event: status, index, field and reason come back. */
    end[2] = 5;
    int rc = poh_score(&cols, &so, &sr, &err);
    CHECK(rc == POH_ERR_INVALID_EVENT && err.index == 2 && strcmp(err.field, "end") == 0 &&
              strcmp(err.reason, "end_before_start") == 0,
          "bad event: rc %d index %lld field %s reason %s", rc, (long long)err.index, err.field, err.reason);
    printf("rejected as expected: %s\n", err.message);
    end[2] = 150;

    /* An unknown flag bit (a newer header's option) is refused. */
    so.flags = 1u << 31;
    CHECK(poh_score(&cols, &so, &sr, &err) == POH_ERR_INVALID_ARGUMENT, "unknown score flag");
    so.flags = 0;

    poh_handle agg = 0;
    CHECK(poh_aggregator_new(NULL, &agg, &err) == POH_OK && agg != 0, "new: %s", err.message);
    poh_record_options ro = POH_INIT(poh_record_options);
    ro.now = 100;
    poh_record_result rr = POH_INIT(poh_record_result);
    CHECK(poh_record(agg, &cols, &ro, &rr, &err) == POH_OK && rr.accepted == 4 && rr.rejected == 0 &&
              rr.errors == 0,
          "record: %s", err.message);
    CHECK(poh_record_event(agg, "T", 1, "dave", 4, 0, 100, 1, 0.5, POH_NOW, &err) == POH_OK, "record one: %s",
          err.message);
    int64_t nholders = 0;
    CHECK(poh_holders(agg, &nholders, &err) == POH_OK && nholders == 4, "holders %lld", (long long)nholders);

    poh_query_options q = POH_INIT(poh_query_options);
    q.now = 100;
    q.n = 2;
    poh_stat stats[4];
    char ids[64];
    int64_t rows = query_top(agg, &q, stats, 4, ids, sizeof ids, &err);
    for (int i = 0; i < rows; i++) {
        printf("top %d: %.*s score %g\n", i + 1, (int)stats[i].id_len, ids + stats[i].id_offset, stats[i].score);
    }
    /* bob: 50 (open, 50..100) + 10 (90..150 recorded at 100 counts up to now). */
    CHECK(rows == 2 && stats[0].score == 60.0 && stats[0].id_len == 3 && memcmp(ids + stats[0].id_offset, "bob", 3) == 0,
          "top row: rows %lld score %g", (long long)rows, rows > 0 ? stats[0].score : -1);
    /* At 200 bob's closed hold has grown to its end: 150 + 60 = 210, behind
     * carol's open hold, (200 - 120) x 3 = 240. */
    q.now = 200;
    rows = query_top(agg, &q, stats, 4, ids, sizeof ids, &err);
    CHECK(rows == 2 && stats[0].score == 240.0 && memcmp(ids + stats[0].id_offset, "carol", 5) == 0 &&
              stats[1].score == 210.0 && memcmp(ids + stats[1].id_offset, "bob", 3) == 0,
          "top at 200: rows %lld score %g", (long long)rows, rows > 0 ? stats[0].score : -1);
    q.n = 1;

    /* One holder's row, inline: no result handle, the id is the caller's. */
    q.now = 100;
    q.n = 0;
    q.token = "T";
    q.token_len = 1;
    q.holder = "bob";
    q.holder_len = 3;
    poh_query_result one = POH_INIT(poh_query_result);
    CHECK(poh_query(agg, &q, &one, &err) == POH_OK && one.rows == 1 && one.result == 0 && one.first.score == 60.0 &&
              one.first.id_offset == 0 && one.first.id_len == 3 && one.first.events == 2 && one.first.tokens == 1,
          "holder lookup: rows %lld result %llu score %g", (long long)one.rows, (unsigned long long)one.result,
          one.first.score);
    q.holder = "nobody";
    q.holder_len = 6;
    CHECK(poh_query(agg, &q, &one, &err) == POH_OK && one.rows == 0 && one.result == 0 && one.first.score == 0.0,
          "missing holder: rows %lld", (long long)one.rows);
    q.token = NULL;
    q.token_len = 0;
    q.holder = NULL;
    q.holder_len = 0;

    poh_handle m = 0;
    int64_t bytes = 0;
    CHECK(poh_metrics_text(agg, &m, &err) == POH_OK, "metrics: %s", err.message);
    CHECK(poh_result_size(m, NULL, &bytes, &err) == POH_OK && bytes > 0, "metrics size");
    char text[16384];
    CHECK(bytes < (int64_t)sizeof text && poh_result_text(m, text, sizeof text, &err) == POH_OK, "metrics text");
    CHECK(strstr(text, "poh_hold_events_total{result=\"accepted\"} 5") != NULL, "metrics content:\n%s", text);
    CHECK(poh_free(m, &err) == POH_OK, "free metrics");

    /* No history: a window query is refused with its own status. */
    poh_window win = {0, 60};
    q.flags = POH_QUERY_WINDOW;
    q.window = win;
    poh_query_result qr = POH_INIT(poh_query_result);
    rc = poh_query(agg, &q, &qr, &err);
    CHECK(rc == POH_ERR_NO_HISTORY && qr.result == 0, "window query without history: rc %d", rc);
    printf("refused as expected: %s\n", err.message);
    q.flags = 0;

    CHECK(poh_free(agg, &err) == POH_OK, "free aggregator");

    /* Windows: the README example clipped to [0, 60) at now = 100 scores
     * alice 20 + bob (50..60) 10 = 30; the TWAB is 30 / 60 = 0.5. */
    so.flags = POH_SCORE_WINDOW;
    so.window = win;
    CHECK(poh_score(&cols, &so, &sr, &err) == POH_OK && sr.score == 30.0, "windowed score %g: %s", sr.score,
          err.message);
    so.flags = POH_SCORE_WINDOW | POH_SCORE_TWAB;
    CHECK(poh_score(&cols, &so, &sr, &err) == POH_OK && sr.score == 0.5, "twab %g: %s", sr.score, err.message);
    so.window = (poh_window){60, 60};
    rc = poh_score(&cols, &so, &sr, &err);
    CHECK(rc == POH_ERR_INVALID_EVENT && strcmp(err.field, "window") == 0 && strcmp(err.reason, "empty_window") == 0,
          "zero-length twab: rc %d field %s reason %s", rc, err.field, err.reason);
    printf("rejected as expected: %s\n", err.message);
    so.flags = POH_SCORE_TWAB; /* a TWAB needs a window */
    CHECK(poh_score(&cols, &so, &sr, &err) == POH_ERR_INVALID_ARGUMENT, "twab without POH_SCORE_WINDOW");

    /* An aggregator with a campaign window [0, 60) and history. */
    poh_aggregator_options opts = POH_INIT(poh_aggregator_options);
    opts.flags = POH_AGGREGATOR_WINDOW | POH_AGGREGATOR_HISTORY;
    opts.window = win;
    agg = 0;
    CHECK(poh_aggregator_new(&opts, &agg, &err) == POH_OK && agg != 0, "new (window, history): %s", err.message);
    /* Strict mode: out may be NULL. */
    CHECK(poh_record(agg, &cols, &ro, NULL, &err) == POH_OK, "record: %s", err.message);
    q.now = 100;
    q.n = 1;
    rows = query_top(agg, &q, stats, 4, ids, sizeof ids, &err);
    CHECK(rows == 1 && stats[0].score == 20.0 && memcmp(ids + stats[0].id_offset, "alice", 5) == 0,
          "campaign top row: rows %lld score %g", (long long)rows, rows > 0 ? stats[0].score : -1);
    /* Any other window, from history: [90, 200) at 200 is carol (120..200) x 3 = 240,
     * ahead of bob 110 + 60 = 170. */
    q.now = 200;
    q.flags = POH_QUERY_WINDOW;
    q.window = (poh_window){90, 200};
    rows = query_top(agg, &q, stats, 4, ids, sizeof ids, &err);
    CHECK(rows == 1 && stats[0].score == 240.0 && memcmp(ids + stats[0].id_offset, "carol", 5) == 0,
          "window top row: rows %lld score %g", (long long)rows, rows > 0 ? stats[0].score : -1);
    if (rows == 1) {
        printf("window [90, 200) top: %.*s score %g\n", (int)stats[0].id_len, ids + stats[0].id_offset,
               stats[0].score);
    }
    q.flags = 0;

    /* Partial mode: the valid rows go in, every rejected row comes back in one
     * errors result (index, field, reason, message). */
    end[2] = 5;
    weight[3] = -1.0;
    ro.flags = POH_RECORD_PARTIAL;
    rr = (poh_record_result)POH_INIT(poh_record_result);
    rc = poh_record(agg, &cols, &ro, &rr, &err);
    CHECK(rc == POH_OK && rr.accepted == 2 && rr.rejected == 2 && rr.errors != 0,
          "partial: rc %d accepted %lld rejected %lld", rc, (long long)rr.accepted, (long long)rr.rejected);
    int64_t nerr = 0, msg_bytes = 0;
    CHECK(poh_result_size(rr.errors, &nerr, &msg_bytes, &err) == POH_OK && nerr == 2 && msg_bytes > 0,
          "errors size %lld", (long long)nerr);
    poh_row_error rows_err[2];
    char msgs[512];
    CHECK(poh_result_errors(rr.errors, rows_err, 1, msgs, sizeof msgs, &err) == POH_ERR_BUFFER_TOO_SMALL,
          "errors into one row");
    CHECK(msg_bytes <= (int64_t)sizeof msgs &&
              poh_result_errors(rr.errors, rows_err, 2, msgs, sizeof msgs, &err) == POH_OK && rows_err[0].index == 2 &&
              strcmp(rows_err[0].field, "end") == 0 && strcmp(rows_err[0].reason, "end_before_start") == 0 &&
              rows_err[1].index == 3 && strcmp(rows_err[1].field, "weight") == 0 &&
              strcmp(rows_err[1].reason, "negative") == 0 && rows_err[1].message_len > 0,
          "errors: %s", err.message);
    for (int i = 0; i < nerr && i < 2; i++) {
        printf("rejected row %lld: %.*s\n", (long long)rows_err[i].index, (int)rows_err[i].message_len,
               msgs + rows_err[i].message_offset);
    }
    CHECK(poh_free(rr.errors, &err) == POH_OK, "free errors");
    /* Strict mode: nothing recorded, the lowest-index bad row reported. */
    ro.flags = 0;
    CHECK(poh_holders(agg, &nholders, &err) == POH_OK, "holders");
    int64_t before_holders = nholders;
    rc = poh_record(agg, &cols, &ro, &rr, &err);
    CHECK(rc == POH_ERR_INVALID_EVENT && err.index == 2 && rr.accepted == 0 && rr.errors == 0,
          "strict: rc %d index %lld", rc, (long long)err.index);
    CHECK(poh_holders(agg, &nholders, &err) == POH_OK && nholders == before_holders, "strict recorded something");
    end[2] = 150;
    weight[3] = 3.0;

    /* Background GC needs a TTL; the interval 0 stops it (a no-op here). */
    CHECK(poh_gc_schedule(agg, 10, &err) == POH_ERR_STATE, "gc_schedule without ttl");
    CHECK(poh_gc_schedule(agg, 0, &err) == POH_OK, "gc_schedule 0");
    CHECK(poh_free(agg, &err) == POH_OK, "free aggregator 2");
    CHECK(poh_free(agg, &err) == POH_ERR_BAD_HANDLE, "double free must be POH_ERR_BAD_HANDLE");
    CHECK(poh_record_event(agg, "T", 1, "a", 1, 0, 1, 1, 1.0, 10, NULL) == POH_ERR_BAD_HANDLE, "use after free");
    CHECK(poh_live_handles() == live0, "handles left: %lld", (long long)(poh_live_handles() - live0));

    /* Durable: record into a data dir, free (flush + unlock), reopen, find it again;
     * a second open while the first is live is POH_ERR_LOCKED. */
#ifdef _WIN32
    char dir[512];
    snprintf(dir, sizeof dir, "%s\\poh-smoke-XXXXXX", getenv("TEMP") ? getenv("TEMP") : ".");
#else
    char dir[] = "/tmp/poh-smoke-XXXXXX";
#endif
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    poh_aggregator_options dopts = POH_INIT(poh_aggregator_options);
    dopts.path = dir;
    dopts.path_len = (int64_t)strlen(dir);
    dopts.fsync = POH_FSYNC_ALWAYS;
    dopts.ttl_seconds = 1000;
    poh_handle dur = 0, dur2 = 0;
    CHECK(poh_aggregator_new(&dopts, &dur, &err) == POH_OK && dur != 0, "open: %s", err.message);
    CHECK(poh_record(dur, &cols, &ro, &rr, &err) == POH_OK && rr.accepted == 4, "durable record: %s", err.message);
    int64_t closed = 0;
    CHECK(poh_close_hold(dur, "T", 1, "carol", 5, 150, 150, &closed, &err) == POH_OK && closed == 1,
          "durable close_hold: %s", err.message);
    CHECK(poh_aggregator_new(&dopts, &dur2, &err) == POH_ERR_LOCKED && dur2 == 0,
          "second open must be POH_ERR_LOCKED");
    printf("locked as expected: %s\n", err.message);
    poh_query_options pq = POH_INIT(poh_query_options);
    pq.now = 300;
    pq.token = "T";
    pq.token_len = 1;
    pq.holder = "bob";
    pq.holder_len = 3;
    poh_query_result before = POH_INIT(poh_query_result), after = POH_INIT(poh_query_result);
    CHECK(poh_query(dur, &pq, &before, &err) == POH_OK && before.rows == 1 && before.first.events == 2 &&
              before.first.score == 310.0,
          "query (bob, T): rows %lld events %lld score %g", (long long)before.rows, (long long)before.first.events,
          before.first.score);
    poh_stat carol_before, carol_after;
    pq.holder = "carol";
    pq.holder_len = 5;
    CHECK(poh_query(dur, &pq, &after, &err) == POH_OK && after.rows == 1 && after.first.open_holds == 0 &&
              after.first.score == 90.0,
          "query (carol, T): score %g", after.first.score);
    carol_before = after.first;
    CHECK(poh_free(dur, &err) == POH_OK, "free durable: %s", err.message);

    dur = 0;
    CHECK(poh_aggregator_new(&dopts, &dur, &err) == POH_OK && dur != 0, "reopen: %s", err.message);
    pq.holder = "bob";
    pq.holder_len = 3;
    after = (poh_query_result)POH_INIT(poh_query_result);
    CHECK(poh_query(dur, &pq, &after, &err) == POH_OK && after.rows == 1 &&
              memcmp(&after.first, &before.first, sizeof after.first) == 0,
          "reopened (bob, T): rows %lld score %g, before %g", (long long)after.rows, after.first.score,
          before.first.score);
    printf("reopened %s: bob score %g\n", dir, after.first.score);
    pq.holder = "carol";
    pq.holder_len = 5;
    CHECK(poh_query(dur, &pq, &after, &err) == POH_OK && after.rows == 1, "reopened (carol, T)");
    carol_after = after.first;
    CHECK(memcmp(&carol_after, &carol_before, sizeof carol_after) == 0, "reopened carol: score %g, before %g",
          carol_after.score, carol_before.score);
    CHECK(poh_free(dur, &err) == POH_OK, "free reopened: %s", err.message);
    remove_flat_dir(dir);
    CHECK(poh_live_handles() == live0, "handles left: %lld", (long long)(poh_live_handles() - live0));

    if (failures) {
        fprintf(stderr, "smoke: %d failed\n", failures);
        return 1;
    }
    printf("smoke: 1 passed, 0 failed\n");
    return 0;
}
