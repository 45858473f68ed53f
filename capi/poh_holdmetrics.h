/*
 * poh_holdmetrics.h — the C API of poh-holdmetrics (libpoh_holdmetrics.so).
 *
 * Hand-written (cffi cannot parse the header cgo generates); capi/header_test.go
 * fails when it and the //export list disagree, and cgo compiles every export
 * against these prototypes, so a type mismatch does not build.
 *
 * Conventions, for every function below:
 *  - The return value is a status: POH_OK (0) or one of POH_ERR_*.
 *  - err may be NULL. Otherwise, on failure, *err is filled in (index, field,
 *    reason, NUL-terminated message); on success it is left untouched. There is
 *    no global "last error": the caller owns the poh_error it passes.
 *  - Handles (aggregators, results) are opaque non-zero integers. A zero,
 *    unknown, already-freed or wrong-kind handle gives POH_ERR_BAD_HANDLE, never
 *    a crash. Handle values are never reused. poh_free is the one way to release
 *    any handle.
 *  - Input pointers are read-only and only read during the call; the library
 *    keeps no pointer to caller memory and gives out no pointer to its own.
 *    A NULL pointer where data is required, or a negative length, gives
 *    POH_ERR_INVALID_ARGUMENT.
 *  - Times are Unix seconds in [0, 253402300799]. Passing POH_NOW for a "now"
 *    (or "at") argument means the library's wall clock.
 *  - Every function recovers internal panics into POH_ERR_INTERNAL.
 *  - The Go runtime inside this library does not survive fork(): after fork,
 *    a child must not call any function here (it would hang). Use spawn.
 */
#ifndef POH_HOLDMETRICS_H
#define POH_HOLDMETRICS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. */
#define POH_OK 0
#define POH_ERR_INVALID_EVENT 1    /* an event or value breaks the contract; see err->index/field/reason */
#define POH_ERR_INVALID_ARGUMENT 2 /* NULL pointer, negative length, inconsistent columns, bad option */
#define POH_ERR_BAD_HANDLE 3       /* zero, unknown, freed or wrong-kind handle */
#define POH_ERR_NO_OPEN_HOLD 4     /* poh_aggregator_close_hold: the pair has no open hold */
#define POH_ERR_BUFFER_TOO_SMALL 5 /* a caller buffer cannot hold the result; nothing was written */
#define POH_ERR_STATE 6            /* not possible now, e.g. background GC already running or no TTL */
#define POH_ERR_INTERNAL 7         /* a recovered panic: a bug, please report the message */
#define POH_ERR_NO_HISTORY 8       /* a window query on an aggregator created without history */
#define POH_ERR_LOCKED 9           /* poh_aggregator_open: another store holds the data dir (any process) */
#define POH_ERR_STORE 10           /* a durable store failed: I/O, bad snapshot, mismatched settings */

/* Fsync policies of poh_store_options.fsync (what each promises: README "Durability"). */
#define POH_FSYNC_INTERVAL 0 /* acknowledged after write(2); fdatasync every fsync_interval_ms (default) */
#define POH_FSYNC_ALWAYS 1   /* acknowledged after fdatasync covered the write (group commit) */
#define POH_FSYNC_NONE 2     /* acknowledged after write(2); syncing is left to the OS */

/* The "use the wall clock" value for now / at arguments. */
#define POH_NOW INT64_MIN

/* A handle: an aggregator or a result. 0 is never a valid handle. */
typedef uint64_t poh_handle;

/* A structured error, owned by the caller. */
typedef struct poh_error {
    int64_t index;      /* the event's index in its batch; -1 when not about one event */
    char field[32];     /* "token_id", "holder_id", "start", "end", "weight", "now", "at", "window", ... or "" */
    char reason[32];    /* "empty", "too_long", "invalid_utf8", "out_of_range", "end_before_start",
                           "not_finite", "negative", "empty_window"; "" when not a validation error */
    char message[1024]; /* human-readable, NUL-terminated, truncated to fit */
} poh_error;

/*
 * A batch in columnar (Arrow) layout. Row i is
 *   start[i], end[i] (when has_end is NULL or has_end[i] != 0), weight[i],
 *   token_data[token_offsets[i] .. token_offsets[i+1]], same for holder.
 * start is required when n > 0. end NULL = every hold open; has_end NULL =
 * every row has an end; weight NULL = 1.0 for every row; *_offsets NULL = no
 * ids (allowed for scoring, not for recording). Offsets have n+1 entries,
 * start at 0, never decrease and stay within *_data_len.
 */
typedef struct poh_columns {
    int64_t n;
    int64_t *start;
    int64_t *end;
    uint8_t *has_end;
    double *weight;
    char *token_data;
    int64_t token_data_len;
    int64_t *token_offsets;
    char *holder_data;
    int64_t holder_data_len;
    int64_t *holder_offsets;
} poh_columns;

/* A packed event without ids (the ids were validated elsewhere): end < 0 means open. */
typedef struct poh_event {
    int64_t start;
    int64_t end;
    double weight;
} poh_event;

/*
 * A window [t0, t1) in Unix seconds. It clips every hold: a hold counts for
 *   max(0, min(end or now, now, t1) - max(start, t0)) seconds.
 * Valid when 0 <= t0 <= t1 <= 253402300799; otherwise POH_ERR_INVALID_EVENT
 * with field "window" (reason "out_of_range" or "end_before_start"), the
 * message naming both ends.
 */
typedef struct poh_window {
    int64_t t0;
    int64_t t1;
} poh_window;

/*
 * Options of poh_aggregator_new2. Zero-initialise it (memset or = {0}) and
 * set what you need: the zero value is poh_aggregator_new(0, 0, ...).
 */
typedef struct poh_aggregator_options {
    int64_t ttl_seconds; /* > 0 enables TTL garbage collection; 0 keeps every holder */
    int64_t shards;      /* <= 0: the default (64); at most 65536 */
    int32_t has_window;  /* != 0: window is a campaign window fixed for the aggregator's life */
    int32_t history;     /* != 0: keep every closed hold (24 bytes each) for window queries */
    poh_window window;   /* the campaign window, read only when has_window != 0 */
} poh_aggregator_options;

/*
 * Store options of poh_aggregator_open. Zero-initialise it and set what you
 * need: the zero value is the fsync "interval" policy with the defaults.
 */
typedef struct poh_store_options {
    int32_t fsync;             /* POH_FSYNC_INTERVAL (0), POH_FSYNC_ALWAYS or POH_FSYNC_NONE */
    int32_t reserved;          /* 0 */
    int64_t fsync_interval_ms; /* the interval policy's sync period; 0 = 5 ms */
    int64_t snapshot_bytes;    /* snapshot after this many log bytes; 0 = 256 MiB; < 0 = never */
} poh_store_options;

/* One snapshot / top-n row. The holder id is ids[id_offset .. id_offset+id_len]
 * of the ids buffer filled by poh_result_stats. */
typedef struct poh_stat {
    double score;
    int64_t total_seconds;
    int64_t events;
    int64_t open_holds;
    int64_t tokens;
    int64_t updated_at;
    int64_t id_offset;
    int64_t id_len;
} poh_stat;

/*
 * poh_version writes the library version ("0.1.0"), NUL-terminated, into
 * buf[0..cap). Returns POH_OK, or POH_ERR_BUFFER_TOO_SMALL when cap is not
 * larger than the version's length (16 bytes always suffice).
 */
int poh_version(char* buf, int64_t cap, poh_error* err);

/*
 * poh_live_handles returns how many handles are currently allocated (for
 * leak checks). It cannot fail.
 */
int64_t poh_live_handles(void);

/*
 * poh_score_columns computes the hold score of a columnar batch at now
 * (POH_NOW = wall clock) into *score:
 *   sum of max(0, min(end or now, now) - start) * weight, in row order, with
 *   Neumaier compensated summation.
 * Ids, when present, are validated too. Returns POH_OK; POH_ERR_INVALID_EVENT
 * for the lowest-index bad row (or a bad now, index -1, or columns of the wrong
 * length); POH_ERR_INVALID_ARGUMENT for NULL cols/score or NULL/negative arrays.
 */
int poh_score_columns(poh_columns* cols, int64_t now, double* score, poh_error* err);

/*
 * poh_score_events is poh_score_columns over n packed events (no ids).
 * Same return codes.
 */
int poh_score_events(poh_event* events, int64_t n, int64_t now, double* score, poh_error* err);

/*
 * poh_score_columns_window is poh_score_columns with every hold clipped to
 * *window (NULL = no window: exactly poh_score_columns):
 *   sum of max(0, min(end or now, now, t1) - max(start, t0)) * weight.
 * now is validated first, then the window, then the rows. Same return codes;
 * a bad window is POH_ERR_INVALID_EVENT with field "window", index -1.
 */
int poh_score_columns_window(poh_columns* cols, int64_t now, poh_window* window, double* score, poh_error* err);

/*
 * poh_score_events_window is poh_score_events with every hold clipped to
 * *window (NULL = no window). Same return codes as poh_score_columns_window.
 */
int poh_score_events_window(poh_event* events, int64_t n, int64_t now, poh_window* window, double* score,
                            poh_error* err);

/*
 * poh_twab_columns stores the time-weighted average balance over *window
 * (required) at now in *twab: the windowed score / (min(t1, now) - t0).
 * A window with no elapsed time (t0 == t1, or t0 >= now) is
 * POH_ERR_INVALID_EVENT with field "window", reason "empty_window" - never a
 * NaN or an infinity. Checks run in the order now, window, elapsed time, rows.
 * POH_ERR_INVALID_ARGUMENT for NULL cols, window or twab.
 */
int poh_twab_columns(poh_columns* cols, int64_t now, poh_window* window, double* twab, poh_error* err);

/*
 * poh_twab_events is poh_twab_columns over n packed events. Same return codes.
 */
int poh_twab_events(poh_event* events, int64_t n, int64_t now, poh_window* window, double* twab, poh_error* err);

/*
 * poh_aggregator_new creates an aggregator and stores its handle in *out.
 * ttl_seconds > 0 enables TTL garbage collection (0 = keep every holder);
 * shards <= 0 means the default (64). Release it with poh_free.
 * Returns POH_OK or POH_ERR_INVALID_ARGUMENT (NULL out, negative ttl).
 */
int poh_aggregator_new(int64_t ttl_seconds, int64_t shards, poh_handle* out, poh_error* err);

/*
 * poh_aggregator_new2 creates an aggregator from *opts (NULL = all defaults)
 * and stores its handle in *out; release it with poh_free.
 * With has_window, every hold is clipped to the campaign window when recorded
 * (closed holds) or read (open holds): snapshots and top-n score only the
 * seconds inside it. With history, closed holds are also kept so that
 * poh_aggregator_snapshot_window / poh_aggregator_top_n_window can answer for
 * any window (memory grows by ~24-34 bytes per closed hold; see README).
 * Returns POH_OK; POH_ERR_INVALID_EVENT (field "window") for a bad campaign
 * window; POH_ERR_INVALID_ARGUMENT for NULL out, a negative ttl or too many
 * shards.
 */
int poh_aggregator_new2(poh_aggregator_options* opts, poh_handle* out, poh_error* err);

/*
 * poh_aggregator_open creates a durable aggregator from *opts (NULL = all
 * defaults), backed by the daemon's store in the data dir path[0..path_len)
 * (created if missing), and stores its handle in *out. It locks the dir
 * (flock on LOCK: one open store per dir across all processes; the kernel
 * drops the lock when the process dies), rebuilds the state from the newest
 * snapshot and the log after it (a torn or corrupt log tail is cut off, with
 * a warning on stderr), and starts the store's two goroutines (log flusher,
 * snapshotter), which poh_free stops. Every write through the handle
 * (record, record_columns, record_partial, close_hold, gc, start_gc's
 * collections) is applied and appended to the log under one lock and returns
 * POH_OK only once its record is durable under sopts->fsync. Reads are as for
 * any aggregator. poh_free flushes and syncs the log, writes a snapshot when
 * the log grew, and releases the lock.
 * The aggregator options must match the stored state: a different campaign
 * window, or history on a dir written without it, is POH_ERR_STORE.
 * Returns POH_OK; POH_ERR_LOCKED when another store (in this or another
 * process) holds the dir; POH_ERR_STORE for I/O errors, an unreadable
 * snapshot or mismatched settings (the message names the dir);
 * POH_ERR_INVALID_EVENT (field "window") for a bad campaign window;
 * POH_ERR_INVALID_ARGUMENT for NULL out, an empty or NULL path, a bad fsync
 * policy or interval, or the option errors of poh_aggregator_new2.
 */
int poh_aggregator_open(char* path, int64_t path_len, poh_aggregator_options* opts, poh_store_options* sopts,
                        poh_handle* out, poh_error* err);

/*
 * poh_aggregator_record records one event, stamping updated_at with now
 * (POH_NOW = wall clock). has_end = 0 opens a hold (end is ignored). The ids
 * are token[0..token_len) and holder[0..holder_len), UTF-8, copied.
 * Returns POH_OK, POH_ERR_INVALID_EVENT (nothing recorded),
 * POH_ERR_INVALID_ARGUMENT or POH_ERR_BAD_HANDLE.
 */
int poh_aggregator_record(poh_handle h, char* token, int64_t token_len, char* holder, int64_t holder_len,
                          int64_t start, int64_t end, int has_end, double weight, int64_t now, poh_error* err);

/*
 * poh_aggregator_record_columns records a columnar batch (ids required).
 * partial = 0: all-or-nothing; a bad row rejects the batch (POH_ERR_INVALID_EVENT,
 * *accepted = 0). partial != 0: valid rows are recorded, *accepted says how many,
 * and POH_ERR_INVALID_EVENT describes the first rejected row (its message
 * counts them all). accepted may be NULL.
 */
int poh_aggregator_record_columns(poh_handle h, poh_columns* cols, int64_t now, int partial, int64_t* accepted,
                                  poh_error* err);

/*
 * poh_aggregator_record_partial records the valid rows of a columnar batch
 * (ids required) and reports every rejected row: *accepted (may be NULL) is
 * how many were recorded, *rejected_count (may be NULL) how many were not, and
 * the indices of the first rejected_cap of them, ascending, go to
 * rejected[0..rejected_cap) (rejected may be NULL when rejected_cap is 0; pass
 * cols->n to get them all). Returns POH_OK when every row was recorded;
 * POH_ERR_INVALID_EVENT when some were rejected (the valid ones are recorded
 * all the same; *err describes the first rejected row); other codes when
 * nothing was recorded (bad handle, NULL or inconsistent columns, bad now).
 */
int poh_aggregator_record_partial(poh_handle h, poh_columns* cols, int64_t now, int64_t* accepted,
                                  int64_t* rejected, int64_t rejected_cap, int64_t* rejected_count, poh_error* err);

/*
 * poh_aggregator_close_hold ends every open hold of (token, holder) at time at
 * (POH_NOW = wall clock), stamping updated_at with now, and stores how many it
 * closed in *closed (may be NULL). Returns POH_OK, POH_ERR_NO_OPEN_HOLD,
 * POH_ERR_INVALID_EVENT (bad id, at out of range or before a hold's start:
 * nothing changes), POH_ERR_INVALID_ARGUMENT or POH_ERR_BAD_HANDLE.
 */
int poh_aggregator_close_hold(poh_handle h, char* token, int64_t token_len, char* holder, int64_t holder_len,
                              int64_t at, int64_t now, int64_t* closed, poh_error* err);

/*
 * poh_aggregator_gc drops every holder idle for longer than the TTL with no
 * open hold, at now (POH_NOW = wall clock), and stores the count in *dropped
 * (may be NULL). Without a TTL it drops nothing.
 */
int poh_aggregator_gc(poh_handle h, int64_t now, int64_t* dropped, poh_error* err);

/*
 * poh_aggregator_start_gc runs GC on the wall clock every interval_ms
 * milliseconds on one background goroutine, until poh_aggregator_stop_gc or
 * poh_free. Returns POH_ERR_STATE when already running or without a TTL,
 * POH_ERR_INVALID_ARGUMENT for interval_ms <= 0.
 */
int poh_aggregator_start_gc(poh_handle h, int64_t interval_ms, poh_error* err);

/*
 * poh_aggregator_stop_gc stops the background GC, if running, and waits for it.
 */
int poh_aggregator_stop_gc(poh_handle h, poh_error* err);

/*
 * poh_aggregator_len stores the number of holders tracked in *holders.
 */
int poh_aggregator_len(poh_handle h, int64_t* holders, poh_error* err);

/*
 * poh_aggregator_snapshot takes one row per holder at now (POH_NOW = wall
 * clock), sorted by score descending then holder_id ascending, and stores a
 * result handle in *result. Read it with poh_result_size / poh_result_stats;
 * release it with poh_free.
 */
int poh_aggregator_snapshot(poh_handle h, int64_t now, poh_handle* result, poh_error* err);

/*
 * poh_aggregator_top_n is the first n rows of the snapshot order, computed
 * with a bounded heap. token_len = 0 (token may then be NULL) means every
 * token; otherwise rows are the (holder, token) pairs of that token. Stores a
 * result handle in *result (release with poh_free). n < 0 is
 * POH_ERR_INVALID_EVENT (field "n").
 */
int poh_aggregator_top_n(poh_handle h, int64_t n, int64_t now, char* token, int64_t token_len, poh_handle* result,
                         poh_error* err);

/*
 * poh_aggregator_pair looks up one (holder, token) pair in O(1) (one map
 * lookup, no scan): when the pair exists, *found = 1 and *out is its row at
 * now (POH_NOW = wall clock), exactly as poh_aggregator_top_n with that token
 * shows it (tokens = 1; id_offset = 0 and id_len = holder_len: the holder id
 * is the caller's own holder buffer). Otherwise *found = 0 and *out is zeroed.
 * Returns POH_OK (found or not); POH_ERR_INVALID_EVENT for a bad id (field
 * "token_id" / "holder_id") or now; POH_ERR_INVALID_ARGUMENT for NULL out or
 * found, or a NULL id with a non-zero length; POH_ERR_BAD_HANDLE.
 */
int poh_aggregator_pair(poh_handle h, char* token, int64_t token_len, char* holder, int64_t holder_len, int64_t now,
                        poh_stat* out, int* found, poh_error* err);

/*
 * poh_aggregator_snapshot_window is poh_aggregator_snapshot over *window
 * (required): every row's score is exactly the batch windowed score (as
 * poh_score_columns_window) of the holder's recorded holds at now, clipped to
 * *window only (not to the campaign window); total_seconds is clipped the same
 * way. Needs an aggregator created with history (poh_aggregator_new2):
 * POH_ERR_NO_HISTORY otherwise. POH_ERR_INVALID_EVENT (field "window") for a
 * bad window; POH_ERR_INVALID_ARGUMENT for NULL window or result.
 */
int poh_aggregator_snapshot_window(poh_handle h, int64_t now, poh_window* window, poh_handle* result,
                                   poh_error* err);

/*
 * poh_aggregator_top_n_window is poh_aggregator_top_n over the rows of
 * poh_aggregator_snapshot_window (a bounded heap over every holder: O(events
 * in history) per call). Same return codes as both.
 */
int poh_aggregator_top_n_window(poh_handle h, int64_t n, int64_t now, char* token, int64_t token_len,
                                poh_window* window, poh_handle* result, poh_error* err);

/*
 * poh_aggregator_metrics_text renders the aggregator's Prometheus metrics in
 * the text exposition format (0.0.4) into a result handle stored in *result.
 * Read it with poh_result_size / poh_result_text; release it with poh_free.
 */
int poh_aggregator_metrics_text(poh_handle h, poh_handle* result, poh_error* err);

/*
 * poh_result_size stores a result's row count in *rows and its byte count in
 * *bytes (total holder-id bytes for a stats result, text length without the
 * NUL for a text result; rows is 0 for text). Either pointer may be NULL.
 */
int poh_result_size(poh_handle r, int64_t* rows, int64_t* bytes, poh_error* err);

/*
 * poh_result_stats copies a stats result (snapshot / top-n) into rows[0..rows_cap)
 * and the concatenated holder ids into ids[0..ids_cap) (not NUL-terminated).
 * Returns POH_ERR_BUFFER_TOO_SMALL (nothing written) when rows_cap or ids_cap is
 * below poh_result_size's counts, POH_ERR_BAD_HANDLE for a text result.
 * The result stays valid until poh_free.
 */
int poh_result_stats(poh_handle r, poh_stat* rows, int64_t rows_cap, char* ids, int64_t ids_cap, poh_error* err);

/*
 * poh_result_text copies a text result into buf[0..cap), NUL-terminated.
 * Returns POH_ERR_BUFFER_TOO_SMALL (nothing written) when cap <= the size from
 * poh_result_size, POH_ERR_BAD_HANDLE for a stats result.
 */
int poh_result_text(poh_handle r, char* buf, int64_t cap, poh_error* err);

/*
 * poh_free releases any handle. For an aggregator it stops its background GC
 * and unregisters its metrics; every later use of the handle gives
 * POH_ERR_BAD_HANDLE. For a durable aggregator (poh_aggregator_open) it also
 * flushes and syncs the log, writes a snapshot if the log grew, stops the
 * store's goroutines and releases the data dir's lock; if that fails it
 * returns POH_ERR_STORE (the handle is released all the same, and everything
 * acknowledged before is in the log). For a result it frees its memory.
 * Freeing 0 or an unknown or already-freed handle returns POH_ERR_BAD_HANDLE
 * and does nothing.
 */
int poh_free(poh_handle h, poh_error* err);

#ifdef __cplusplus
}
#endif

#endif /* POH_HOLDMETRICS_H */
