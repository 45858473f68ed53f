/*
 * poh_holdmetrics.h — the C API of poh-holdmetrics (libpoh_holdmetrics.so), version 0.2.
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
 *  - Input pointers are read-only (never written, though cgo's exports cannot
 *    say const) and only read during the call; the library
 *    keeps no pointer to caller memory and gives out no pointer to its own.
 *    A NULL pointer where data is required, or a negative length, gives
 *    POH_ERR_INVALID_ARGUMENT.
 *  - Option and result structs are versioned: their first field, size, is
 *    sizeof the struct as the caller compiled it (POH_INIT sets it). The
 *    library reads (or, for results, writes) only that many bytes, so a
 *    caller built against an older header keeps working; a newer caller's
 *    non-zero field that this library does not know is POH_ERR_INVALID_ARGUMENT.
 *    A NULL options pointer means every default. Zero-initialise the rest:
 *    zero is the default of every field - except a "now" field, where 0 is
 *    the Unix epoch: set it (to POH_NOW for the wall clock) whenever you pass
 *    an options struct.
 *  - Times are Unix seconds in [0, 253402300799]. Passing POH_NOW for a "now"
 *    (or "at") means the library's wall clock.
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
#define POH_ERR_NO_OPEN_HOLD 4     /* poh_close_hold: the pair has no open hold */
#define POH_ERR_BUFFER_TOO_SMALL 5 /* a caller buffer cannot hold the result; nothing was written */
#define POH_ERR_STATE 6            /* not possible now, e.g. background GC already running or no TTL */
#define POH_ERR_INTERNAL 7         /* a recovered panic: a bug, please report the message */
#define POH_ERR_NO_HISTORY 8       /* a window query on an aggregator created without history */
#define POH_ERR_LOCKED 9           /* poh_aggregator_new: another store holds the data dir (any process) */
#define POH_ERR_STORE 10           /* a durable store failed: I/O, bad snapshot, mismatched settings */
#define POH_ERR_CAMPAIGN 11        /* poh_airdrop: a rule, the request or a file is wrong; the message names it */

/* Fsync policies of poh_aggregator_options.fsync (what each promises: README "Durability"). */
#define POH_FSYNC_INTERVAL 0 /* acknowledged after write(2); fdatasync every fsync_interval_ms (default) */
#define POH_FSYNC_ALWAYS 1   /* acknowledged after fdatasync covered the write (group commit) */
#define POH_FSYNC_NONE 2     /* acknowledged after write(2); syncing is left to the OS */

/* Flags of poh_aggregator_options.flags. */
#define POH_AGGREGATOR_WINDOW 1u  /* window is a campaign window fixed for the aggregator's life */
#define POH_AGGREGATOR_HISTORY 2u /* keep every closed hold (24 bytes each) for window queries */
#define POH_AGGREGATOR_EXACT 4u   /* exact mode: integer weights (weight_u256), exact integer scores */

/* Flags of poh_score_options.flags. */
#define POH_SCORE_WINDOW 1u /* clip every hold to window */
#define POH_SCORE_TWAB 2u   /* the time-weighted average balance over window (needs POH_SCORE_WINDOW) */
#define POH_SCORE_EXACT 4u  /* exact mode: integer weights, the exact score in poh_score_result.exact */
/* POH_SCORE_CONTINUE continues the running sum of a batch scored in parts (float mode): the rows
 * are added to the Neumaier pair (opts->sum, opts->comp) of the parts before them, so that
 * scoring the parts in order, each starting from the pair the last one returned in
 * (out->sum, out->comp), gives the bits of scoring the batch whole. Not with POH_SCORE_EXACT. */
#define POH_SCORE_CONTINUE 8u

/* Flags of poh_transfer_options.flags: the row kind (default: ERC-20 transfers), and more. */
#define POH_TRANSFERS_BALANCE 1u     /* rows are (token, holder, time, new balance) */
#define POH_TRANSFERS_DELTA 2u       /* rows are (token, holder, time, delta; negative[i] != 0 subtracts) */
#define POH_TRANSFERS_ZERO_HOLDER 4u /* the zero address is a holder (else it only mints and burns) */

/* Flags of poh_allocate_options.flags. */
#define POH_ALLOCATE_CAP 1u /* cap bounds any one amount */

/* Flags of poh_share_columns.flags: the layout of exact (default: 48 bytes big-endian per row). */
#define POH_SHARES_INT64 1u      /* exact is int64_t per row (native byte order), each >= 0 */
/* POH_SHARES_DECIMAL128: exact is 16 bytes per row, little-endian two's complement (Arrow's
 * decimal128 of scale 0), each >= 0. */
#define POH_SHARES_DECIMAL128 2u

/* Flags of poh_award_columns.flags: the layout of amount (default: 48 bytes big-endian per row).
 * Arrow's decimal128 / decimal256 buffers of scale 0; POH_ERR_INVALID_ARGUMENT (nothing written)
 * when an amount has more digits than the type's precision (38 / 76). */
#define POH_AWARDS_DECIMAL128 1u /* amount is 16 bytes per row, little-endian */
#define POH_AWARDS_DECIMAL256 2u /* amount is 32 bytes per row, little-endian */

/* Flags of poh_record_options.flags. */
#define POH_RECORD_PARTIAL 1u /* record the valid rows, report the others (else all-or-nothing) */
/* POH_RECORD_CHECK validates only, recording nothing: a strict batch sent in several calls is
 * checked whole first (not with POH_RECORD_PARTIAL). */
#define POH_RECORD_CHECK 2u

/* Flags of poh_query_options.flags. */
#define POH_QUERY_WINDOW 1u /* score every holder's recorded holds clipped to window, from history */
/* POH_QUERY_UNORDERED (n = 0) gives every row in no particular order, without the ranking's sort:
 * the same rows, bit for bit, for a caller that sorts, sums or indexes them itself. With n > 0
 * the rows are the first n of the ranking, in order, as without it. */
#define POH_QUERY_UNORDERED 2u

/* Flags of poh_group_options.flags (poh_score_by_holder). */
#define POH_GROUP_WINDOW 1u   /* clip every hold to window */
#define POH_GROUP_TWAB 2u     /* each row's time-weighted average balance over window (needs POH_GROUP_WINDOW) */
#define POH_GROUP_EXACT 4u    /* exact mode: integer weights, exact scores in poh_stat_columns.exact */
#define POH_GROUP_BY_TOKEN 8u /* one row per (holder, token) pair, its token in poh_stat_columns.token_ids */

/* An option or result struct with its size set and every other field zero (the
 * defaults): poh_query_options q = POH_INIT(poh_query_options); */
#define POH_INIT(T) {.size = (uint32_t)sizeof(T)}

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

/* A packed event without ids (the ids were validated elsewhere): end < 0 means open. */
typedef struct poh_event {
    int64_t start;
    int64_t end;
    double weight;
} poh_event;

/*
 * A batch in columnar (Arrow) layout. Row i is
 *   start[i], end[i] (when has_end is NULL or has_end[i] != 0), weight[i],
 *   token_data[token_offsets[i] .. token_offsets[i+1]], same for holder.
 * start is required when n > 0. end NULL = every hold open; has_end NULL =
 * every row has an end; weight NULL = 1.0 for every row; *_offsets NULL = no
 * ids (allowed for scoring, not for recording). Offsets have n+1 entries,
 * start at 0, never decrease and stay within *_data_len.
 * Alternatively, rows (with start, end, has_end and weight NULL) gives the n
 * rows packed, without ids: the layout of a list of ready-made events.
 * Exact mode takes weight_u256 (32 bytes big-endian per row, the layout cryo
 * writes uint256 in) instead of weight (whose values must then be integers up
 * to 2^53); NULL both: 1 for every row.
 */
typedef struct poh_columns {
    uint32_t size;  /* sizeof(poh_columns) */
    uint32_t flags; /* 0 */
    int64_t n;
    const int64_t *start;
    const int64_t *end;
    const uint8_t *has_end;
    const double *weight;
    const char *token_data;
    int64_t token_data_len;
    const int64_t *token_offsets;
    const char *holder_data;
    int64_t holder_data_len;
    const int64_t *holder_offsets;
    const poh_event *rows;
    const uint8_t *weight_u256;
} poh_columns;

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

/* Options of poh_aggregator_new. */
typedef struct poh_aggregator_options {
    uint32_t size;             /* sizeof(poh_aggregator_options) */
    uint32_t flags;            /* POH_AGGREGATOR_WINDOW | POH_AGGREGATOR_HISTORY */
    int64_t ttl_seconds;       /* > 0 enables TTL garbage collection; 0 keeps every holder */
    int64_t shards;            /* <= 0: the default (64); at most 65536 */
    poh_window window;         /* the campaign window, read with POH_AGGREGATOR_WINDOW */
    const char *path;          /* NULL / path_len 0: in memory; else the durable store's data dir */
    int64_t path_len;
    int32_t fsync;             /* POH_FSYNC_INTERVAL (0), POH_FSYNC_ALWAYS or POH_FSYNC_NONE */
    int32_t reserved;          /* 0 */
    int64_t fsync_interval_ms; /* the interval policy's sync period; 0 = 5 ms */
    int64_t snapshot_bytes;    /* snapshot after this many log bytes; 0 = 256 MiB; < 0 = never */
} poh_aggregator_options;

/* Options of poh_score. */
typedef struct poh_score_options {
    uint32_t size;  /* sizeof(poh_score_options) */
    uint32_t flags; /* POH_SCORE_WINDOW | POH_SCORE_TWAB | POH_SCORE_EXACT | POH_SCORE_CONTINUE */
    int64_t now;    /* POH_NOW = wall clock */
    poh_window window;
    double sum;     /* POH_SCORE_CONTINUE: the running Neumaier pair of the parts before */
    double comp;
} poh_score_options;

/* What poh_score computed. */
typedef struct poh_score_result {
    uint32_t size;     /* sizeof(poh_score_result), set by the caller */
    uint32_t reserved;
    double score;      /* the score, or the TWAB with POH_SCORE_TWAB (exact mode: exact's nearest double) */
    uint8_t exact[48]; /* POH_SCORE_EXACT: the exact score (a TWAB's floor), 384 bits big-endian */
    double sum;        /* float mode: the Neumaier pair (sum, comp) after these rows (before any */
    double comp;       /* TWAB division), for the next part's POH_SCORE_CONTINUE */
} poh_score_result;

/* Options of poh_record. */
typedef struct poh_record_options {
    uint32_t size;  /* sizeof(poh_record_options) */
    uint32_t flags; /* POH_RECORD_PARTIAL */
    int64_t now;    /* the time of the write (stamps updated_at); POH_NOW = wall clock */
} poh_record_options;

/* What poh_record did. */
typedef struct poh_record_result {
    uint32_t size;     /* sizeof(poh_record_result), set by the caller */
    uint32_t reserved;
    int64_t accepted;  /* rows recorded */
    int64_t rejected;  /* rows rejected (partial mode) */
    poh_handle errors; /* rejected > 0: a result with one poh_row_error per rejected row
                          (poh_result_errors; release with poh_free); 0 otherwise */
} poh_record_result;

/* One rejected row of a partial batch. Its message is
 * text[message_offset .. message_offset+message_len] of the text buffer filled
 * by poh_result_errors (not NUL-terminated). */
typedef struct poh_row_error {
    int64_t index;  /* the row's index in the batch */
    char field[32]; /* as in poh_error */
    char reason[32];
    int64_t message_offset;
    int64_t message_len;
} poh_row_error;

/* What poh_query selects. */
typedef struct poh_query_options {
    uint32_t size;      /* sizeof(poh_query_options) */
    uint32_t flags;     /* POH_QUERY_WINDOW | POH_QUERY_UNORDERED */
    int64_t now;        /* POH_NOW = wall clock */
    int64_t n;          /* 0: every row (the full ranking); > 0: the first n (a bounded heap) */
    poh_window window;  /* read with POH_QUERY_WINDOW */
    const char *token;  /* token[0..token_len): only (holder, token) rows; token_len 0: every token */
    int64_t token_len;
    const char *holder; /* holder[0..holder_len): only that holder's row (one lookup); 0: every holder */
    int64_t holder_len;
} poh_query_options;

/* One query row (poh_query_result.first). */
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

/* What poh_query found. */
typedef struct poh_query_result {
    uint32_t size;     /* sizeof(poh_query_result), set by the caller */
    uint32_t reserved;
    int64_t rows;      /* rows selected */
    int64_t id_bytes;  /* their holder ids' total bytes */
    poh_handle result; /* a result of every row (poh_result_stats; release with poh_free); 0 for a
                          holder lookup, whose row (if rows == 1) is first */
    poh_stat first;    /* the first row (zero when rows == 0); for a holder lookup its id is the
                          caller's holder (id_offset 0, id_len holder_len) */
    uint8_t first_exact[48]; /* exact mode: first's exact score, 384 bits big-endian */
} poh_query_result;

/* Where poh_result_stats copies a query result, column by column (Arrow's
 * layout). Any array may be NULL: that column is not copied. Row i's holder
 * id is ids[id_offsets[i] .. id_offsets[i+1]]. */
typedef struct poh_stat_columns {
    uint32_t size;     /* sizeof(poh_stat_columns) */
    uint32_t reserved;
    int64_t rows_cap;  /* rows each array holds (id_offsets: rows_cap + 1) */
    int64_t ids_cap;   /* bytes ids holds */
    double *score;
    int64_t *total_seconds;
    int64_t *events;
    int64_t *open_holds;
    int64_t *tokens;
    int64_t *updated_at;
    int64_t *id_offsets;
    char *ids;
    uint8_t *exact;    /* 48 bytes per row, big-endian: the exact score (exact mode; zeros otherwise) */
    int64_t token_ids_cap;  /* bytes token_ids holds */
    int64_t *token_offsets; /* rows_cap + 1: row i's token is token_ids[token_offsets[i] .. token_offsets[i+1]] */
    char *token_ids;        /* (a by-token poh_score_by_holder result; for any other result every token is "") */
} poh_stat_columns;

/* Options of poh_score_by_holder. */
typedef struct poh_group_options {
    uint32_t size;     /* sizeof(poh_group_options) */
    uint32_t flags;    /* POH_GROUP_WINDOW | POH_GROUP_TWAB | POH_GROUP_EXACT | POH_GROUP_BY_TOKEN */
    int64_t now;       /* POH_NOW = wall clock */
    poh_window window; /* read with POH_GROUP_WINDOW */
    int64_t n;         /* 0: every row (the full ranking); > 0: the first n (a bounded heap) */
    int64_t threads;   /* threads the call may use: 0 = every core, 1 = the calling thread only */
} poh_group_options;

/* What poh_score_by_holder computed. */
typedef struct poh_group_result {
    uint32_t size;       /* sizeof(poh_group_result), set by the caller */
    uint32_t reserved;
    int64_t rows;        /* rows (holders, or (holder, token) pairs) */
    int64_t id_bytes;    /* their holder ids' total bytes */
    int64_t token_bytes; /* their token ids' total bytes (POH_GROUP_BY_TOKEN; else 0) */
    poh_handle result;   /* a result of every row (poh_result_stats; release with poh_free) */
} poh_group_result;

/* Balance changes for poh_transfers, in columns (ids as in poh_columns). time
 * and token are required, from and to for transfers, holder for balance and
 * delta rows. block and log_index order the rows (NULL: input order; rows of
 * one position keep input order); removed flags reorged rows (skipped); value
 * is 32 bytes big-endian per row (the amount, the new balance or |delta|). */
typedef struct poh_transfer_columns {
    uint32_t size;  /* sizeof(poh_transfer_columns) */
    uint32_t flags; /* 0 */
    int64_t n;
    const int64_t *time;
    const int64_t *block;
    const int64_t *log_index;
    const uint8_t *value;
    const uint8_t *negative;
    const uint8_t *removed;
    const char *token_data;
    int64_t token_data_len;
    const int64_t *token_offsets;
    const char *from_data;
    int64_t from_data_len;
    const int64_t *from_offsets;
    const char *to_data;
    int64_t to_data_len;
    const int64_t *to_offsets;
    const char *holder_data;
    int64_t holder_data_len;
    const int64_t *holder_offsets;
} poh_transfer_columns;

/* Options of poh_transfers. */
typedef struct poh_transfer_options {
    uint32_t size;           /* sizeof(poh_transfer_options) */
    uint32_t flags;          /* POH_TRANSFERS_BALANCE or POH_TRANSFERS_DELTA, | POH_TRANSFERS_ZERO_HOLDER */
    int64_t opening_time;    /* opening balances hold from then on; every row must be at or after it */
    poh_handle record_into;  /* non-zero: record the holds into this exact-mode aggregator, return no result */
    int64_t now;             /* the time of that write (POH_NOW = wall clock) */
} poh_transfer_options;

/* What poh_transfers made. */
typedef struct poh_transfer_result {
    uint32_t size;        /* sizeof(poh_transfer_result), set by the caller */
    uint32_t reserved;
    int64_t rows;         /* holds */
    int64_t pairs;        /* (token, holder) pairs */
    int64_t token_bytes;  /* total bytes of the holds' token ids */
    int64_t holder_bytes; /* and of their holder ids */
    poh_handle result;    /* a holds result (poh_result_holds; release with poh_free), 0 with record_into */
} poh_transfer_result;

/* Where poh_result_holds copies holds (any array may be NULL: not copied).
 * Row i is token[token_offsets[i]..], holder[holder_offsets[i]..] (canonical
 * ids), start[i], end[i] when has_end[i] (else an open hold), and weight
 * 32 bytes big-endian. */
typedef struct poh_hold_columns {
    uint32_t size;     /* sizeof(poh_hold_columns) */
    uint32_t reserved;
    int64_t rows_cap;
    int64_t token_cap;
    int64_t holder_cap;
    int64_t *start;
    int64_t *end;
    uint8_t *has_end;
    uint8_t *weight;
    char *token;
    int64_t *token_offsets;
    char *holder;
    int64_t *holder_offsets;
} poh_hold_columns;

/* Scores to split with poh_allocate: holder ids, and a double score per row,
 * or (exact) 48 bytes big-endian per row (POH_SHARES_* flags: other layouts). */
typedef struct poh_share_columns {
    uint32_t size;  /* sizeof(poh_share_columns) */
    uint32_t flags; /* POH_SHARES_INT64, POH_SHARES_DECIMAL128 (at most one; with exact only) */
    int64_t n;
    const char *ids;
    int64_t ids_len;
    const int64_t *id_offsets;
    const double *score;
    const uint8_t *exact;
} poh_share_columns;

/* Options of poh_allocate. Amounts are integers of up to 384 bits, big-endian. */
typedef struct poh_allocate_options {
    uint32_t size;     /* sizeof(poh_allocate_options) */
    uint32_t flags;    /* POH_ALLOCATE_CAP */
    uint8_t pool[48];  /* the pool, in the token's smallest unit */
    uint8_t cap[48];   /* with POH_ALLOCATE_CAP: no amount above it */
    double min_score;  /* holders scoring below it get nothing */
} poh_allocate_options;

/* Where poh_result_awards copies an allocation, in its order (amount
 * descending, then holder id ascending): each row's index in the shares and
 * its amount (48 bytes big-endian, or a POH_AWARDS_* layout). */
typedef struct poh_award_columns {
    uint32_t size;     /* sizeof(poh_award_columns) */
    uint32_t flags;    /* 0, POH_AWARDS_DECIMAL128 or POH_AWARDS_DECIMAL256 */
    int64_t rows_cap;
    int64_t *share;
    uint8_t *amount;
} poh_award_columns;

/*
 * poh_version writes the library version ("0.2.0"), NUL-terminated, into
 * buf[0..cap). Returns POH_OK, or POH_ERR_BUFFER_TOO_SMALL when cap is not
 * larger than the version's length (16 bytes always suffice).
 */
int poh_version(char *buf, int64_t cap, poh_error *err);

/*
 * poh_live_handles returns how many handles are currently allocated (for
 * leak checks). It cannot fail.
 */
int64_t poh_live_handles(void);

/*
 * poh_score computes, into out->score, the hold score of a batch at opts->now:
 *   sum of max(0, min(end or now, now, t1) - max(start, t0)) * weight
 * in row order, with Neumaier compensated summation ([t0, t1) is the window
 * with POH_SCORE_WINDOW, else every valid time). With POH_SCORE_TWAB it is the
 * time-weighted average balance: that score / (min(t1, now) - t0); a window
 * with no elapsed time (t0 == t1, or t0 >= now) is POH_ERR_INVALID_EVENT with
 * field "window", reason "empty_window" - never a NaN or an infinity.
 * Ids, when present, are validated too. Checks run in the order now, window,
 * elapsed time, rows. Returns POH_OK; POH_ERR_INVALID_EVENT for the
 * lowest-index bad row (or a bad now or window, index -1, or columns of the
 * wrong length); POH_ERR_INVALID_ARGUMENT for NULL cols or out, NULL or
 * negative arrays, TWAB without a window, CONTINUE with EXACT or an unknown flag.
 * With POH_SCORE_CONTINUE the score (or TWAB) is that of every part so far.
 */
int poh_score(poh_columns *cols, poh_score_options *opts, poh_score_result *out, poh_error *err);

/*
 * poh_score_by_holder groups a batch by holder (with POH_GROUP_BY_TOKEN, by
 * (holder, token) pair) and scores each group at opts->now, in one call and
 * without an aggregator: each row is exactly, bit for bit, the row an
 * aggregator would give after poh_record of the batch at now (with window as
 * its campaign window) and poh_query at now; with POH_GROUP_TWAB its score is
 * divided by the window's elapsed time (exact mode: floored). Ids are
 * compared in canonical form (an address in lower case). holder_offsets are
 * required (token_offsets too with POH_GROUP_BY_TOKEN; without a token column
 * every row is of one token). The rows are in ranking order (score
 * descending, then holder id, then token id ascending), the first opts->n of
 * them when n > 0. out->result is a result handle of them: read it with
 * poh_result_size / poh_result_stats (updated_at is now; tokens is the
 * holder's distinct tokens, 1 by token), release it with poh_free. The call
 * may run opts->threads threads (0: one per core), all finished when it
 * returns. Returns POH_OK; POH_ERR_INVALID_EVENT for the lowest-index bad
 * row, fields in contract order (nothing is computed: all-or-nothing), or a
 * bad now, window, empty window for a TWAB, n < 0 (field "n") or a missing id
 * column (the packed rows layout has none); POH_ERR_INVALID_ARGUMENT for NULL
 * cols or out, POH_GROUP_TWAB without POH_GROUP_WINDOW or an unknown flag.
 */
int poh_score_by_holder(poh_columns *cols, poh_group_options *opts, poh_group_result *out, poh_error *err);

/*
 * poh_aggregator_new creates an aggregator from *opts (NULL = all defaults)
 * and stores its handle in *out; release it with poh_free.
 * With POH_AGGREGATOR_WINDOW, every hold is clipped to the campaign window when
 * credited or read: queries score only the seconds inside it. With
 * POH_AGGREGATOR_HISTORY, closed holds are also kept so that a query with
 * POH_QUERY_WINDOW can answer for any window (memory grows by ~24-34 bytes per
 * closed hold; see README).
 * With a path, it is durable: backed by the daemon's store in that data dir
 * (created if missing). It locks the dir (one open store per dir across all
 * processes; the OS drops the lock when the process dies), rebuilds the state
 * from the newest snapshot and the log after it (a torn or corrupt log tail is
 * cut off, with a warning on stderr), and starts the store's two goroutines
 * (log flusher, snapshotter), which poh_free stops. Every write through the
 * handle (poh_record, poh_record_event, poh_close_hold, poh_gc and the
 * background GC) is applied and appended to the log under one lock and
 * returns POH_OK only once its record is durable under opts->fsync. The
 * window and history flags must match the stored state: a different campaign
 * window, or history on a dir written without it, is POH_ERR_STORE.
 * Returns POH_OK; POH_ERR_LOCKED when another store (in this or another
 * process) holds the dir; POH_ERR_STORE for I/O errors, an unreadable snapshot
 * or mismatched settings (the message names the dir); POH_ERR_INVALID_EVENT
 * (field "window") for a bad campaign window; POH_ERR_INVALID_ARGUMENT for NULL
 * out, a negative ttl, too many shards, a bad fsync policy or interval, fsync
 * settings without a path, or an unknown flag.
 */
int poh_aggregator_new(poh_aggregator_options *opts, poh_handle *out, poh_error *err);

/*
 * poh_record records a columnar batch (ids required; not the packed rows
 * layout) at opts->now (NULL opts: strict, now = wall clock).
 * Strict (the default): a bad row rejects the batch - POH_ERR_INVALID_EVENT
 * for the lowest-index bad row, nothing recorded. With POH_RECORD_PARTIAL the
 * valid rows are recorded and the call returns POH_OK: out->accepted says how
 * many, out->rejected how many were not, and out->errors is then a result
 * handle with every rejected row's index, field, reason and message (read
 * with poh_result_size / poh_result_errors, release with poh_free): one call,
 * whatever the number of bad rows. out may be NULL in strict mode only.
 * With POH_RECORD_CHECK the batch is validated as a strict record would, and
 * nothing is recorded (out->accepted is 0): a caller that splits one
 * all-or-nothing batch into several calls checks every part first.
 * Other failures (bad handle, NULL or inconsistent columns, bad now, a store
 * failure) record nothing and create no handle.
 */
int poh_record(poh_handle h, poh_columns *cols, poh_record_options *opts, poh_record_result *out,
               poh_error *err);

/*
 * poh_count_rejected counts, in the aggregator's metrics, events the caller
 * refused before they reached it (they could not be converted: a wrong type,
 * a null start, an unknown key): rejected of them under
 * poh_hold_events_total{result="rejected"}. cols (may be NULL) are the rows
 * the caller did convert of a strict batch it refused for those: each row that
 * fails validation counts as rejected, each valid one as dropped, exactly as
 * poh_record counts a strict batch it refuses itself. Nothing is recorded.
 * Returns POH_OK; POH_ERR_BAD_HANDLE; POH_ERR_INVALID_ARGUMENT for a negative
 * count or NULL / negative arrays; POH_ERR_INVALID_EVENT for columns without
 * ids or of different lengths (as poh_record).
 */
int poh_count_rejected(poh_handle h, poh_columns *cols, int64_t rejected, poh_error *err);

/*
 * poh_record_event records one event at now (POH_NOW = wall clock), the fast
 * path for one event per call. has_end = 0 opens a hold (end is ignored). The
 * ids are token[0..token_len) and holder[0..holder_len), UTF-8, copied.
 * Returns POH_OK, POH_ERR_INVALID_EVENT (nothing recorded),
 * POH_ERR_INVALID_ARGUMENT, POH_ERR_BAD_HANDLE or POH_ERR_STORE.
 */
int poh_record_event(poh_handle h, char *token, int64_t token_len, char *holder, int64_t holder_len,
                     int64_t start, int64_t end, int32_t has_end, double weight, int64_t now, poh_error *err);

/*
 * poh_close_hold ends every open hold of (token, holder) at time at
 * (POH_NOW = wall clock), as a write at now, and stores how many it closed in
 * *closed (may be NULL). Returns POH_OK, POH_ERR_NO_OPEN_HOLD,
 * POH_ERR_INVALID_EVENT (bad id, at out of range or before a hold's start:
 * nothing changes), POH_ERR_INVALID_ARGUMENT or POH_ERR_BAD_HANDLE.
 */
int poh_close_hold(poh_handle h, char *token, int64_t token_len, char *holder, int64_t holder_len,
                   int64_t at, int64_t now, int64_t *closed, poh_error *err);

/*
 * poh_gc drops every holder idle for longer than the TTL that holds nothing
 * live, at now (POH_NOW = wall clock), and stores the count in *dropped (may
 * be NULL). Without a TTL it drops nothing.
 */
int poh_gc(poh_handle h, int64_t now, int64_t *dropped, poh_error *err);

/*
 * poh_gc_schedule runs poh_gc on the wall clock every interval_ms milliseconds
 * on one background goroutine, until poh_gc_schedule(h, 0) or poh_free;
 * interval_ms = 0 stops it (and waits for it) and is a no-op when none runs.
 * Returns POH_ERR_STATE when one is already running or without a TTL,
 * POH_ERR_INVALID_ARGUMENT for interval_ms < 0.
 */
int poh_gc_schedule(poh_handle h, int64_t interval_ms, poh_error *err);

/*
 * poh_holders stores the number of holders tracked in *holders.
 */
int poh_holders(poh_handle h, int64_t *holders, poh_error *err);

/*
 * poh_query selects rows at q->now (NULL q: every row at the wall clock), in
 * ranking order: score descending, then holder_id ascending (every row in no
 * particular order with POH_QUERY_UNORDERED and n = 0).
 *  - n > 0: the first n rows (a bounded heap, no full sort); 0: every row.
 *  - token: (holder, token) rows of that token only (tokens = 1).
 *  - holder: that holder's row only (with token, its pair's row), found by one
 *    lookup: out->rows is 0 or 1, the row is out->first, out->result is 0.
 *  - POH_QUERY_WINDOW: each row's score is exactly the batch windowed score
 *    (as poh_score) of the holder's recorded holds at now, clipped to window
 *    only (not to the campaign window); total_seconds is clipped the same way.
 *    Needs POH_AGGREGATOR_HISTORY: POH_ERR_NO_HISTORY otherwise.
 * Without a holder, out->result is a result handle of every row (also when
 * there is none): read it with poh_result_stats, release it with poh_free.
 * Returns POH_OK; POH_ERR_INVALID_EVENT for a bad now, window (field "window"),
 * token or holder id, or n < 0 (field "n"); POH_ERR_NO_HISTORY;
 * POH_ERR_INVALID_ARGUMENT for NULL out, a NULL id with a non-zero length or
 * an unknown flag; POH_ERR_BAD_HANDLE.
 */
int poh_query(poh_handle h, poh_query_options *q, poh_query_result *out, poh_error *err);

/*
 * poh_metrics_text renders the aggregator's Prometheus metrics in the text
 * exposition format (0.0.4) into a result handle stored in *result. Read it
 * with poh_result_size / poh_result_text; release it with poh_free.
 */
int poh_metrics_text(poh_handle h, poh_handle *result, poh_error *err);

/*
 * poh_transfers turns balance changes into holds: per (token, holder) the
 * balance changes at each row, in (block, log_index) order; each balance lasts
 * from its change to the next as one hold whose weight is the balance (exact,
 * uint256), the last one open. An id that starts with 0x must be an address
 * (0x and 40 hex digits) and is one holder whatever its case (canonical
 * lowercase); the zero address mints and burns and is no holder (unless
 * POH_TRANSFERS_ZERO_HOLDER); self and zero transfers change nothing;
 * opening (may be NULL: token, holder, value columns used) gives balances held
 * from opts->opening_time. With opts->record_into the holds are recorded into
 * that aggregator (exact mode) as one write at opts->now; otherwise
 * out->result holds them (poh_result_holds). Returns POH_OK;
 * POH_ERR_INVALID_EVENT for the first bad row in (block, log_index) order -
 * index is the row, field ("time", "token_id", "from_address", "to_address",
 * "holder_id", "value", "delta") and reason ("negative" when a balance would
 * go below zero, "out_of_range") say what; the message names the holder and
 * the amounts; POH_ERR_INVALID_ARGUMENT for NULL or inconsistent columns.
 */
int poh_transfers(poh_transfer_columns *rows, poh_transfer_columns *opening, poh_transfer_options *opts,
                  poh_transfer_result *out, poh_error *err);

/*
 * poh_result_holds copies a holds result into the columns of *out (see
 * poh_hold_columns; sizes from poh_transfer_result). Same return codes as
 * poh_result_stats.
 */
int poh_result_holds(poh_handle r, poh_hold_columns *out, poh_error *err);

/*
 * poh_allocate splits opts->pool among the shares in proportion to their
 * scores, exactly: each gets the floor of pool x score / total, and the units
 * left go one each to the largest remainders (ties: holder id ascending), so
 * the amounts sum to the pool. With POH_ALLOCATE_CAP, holders whose quota
 * reaches the cap get the cap and the rest is split among the others, until
 * no quota reaches it. Holders scoring 0 or below min_score get nothing and
 * are left out. *result is an awards result (poh_result_size gives its rows;
 * poh_result_awards reads it; release with poh_free). Returns POH_OK;
 * POH_ERR_INVALID_EVENT for a bad holder id (index, field "holder_id");
 * POH_ERR_STATE when no holder is eligible for a non-zero pool, or the cap
 * cannot fit the pool (cap x eligible < pool); POH_ERR_INVALID_ARGUMENT for a
 * duplicate holder, a negative or non-finite score, or bad columns.
 */
int poh_allocate(poh_share_columns *shares, poh_allocate_options *opts, poh_handle *result, poh_error *err);

/*
 * poh_result_awards copies an awards result into the columns of *out. Same
 * return codes as poh_result_stats.
 */
int poh_result_awards(poh_handle r, poh_award_columns *out, poh_error *err);

/*
 * poh_result_size stores a result's row count in *rows and its byte count in
 * *bytes: holder-id bytes for a query result, message bytes for an errors
 * result, text length without the NUL (rows 0) for a text result. Either
 * pointer may be NULL.
 */
int poh_result_size(poh_handle r, int64_t *rows, int64_t *bytes, poh_error *err);

/*
 * poh_result_stats copies a query result (or a poh_score_by_holder result)
 * into the columns of *out (each array NULL or of out->rows_cap rows; ids of
 * out->ids_cap bytes, token_ids of token_ids_cap). Returns
 * POH_ERR_BUFFER_TOO_SMALL (nothing written) when rows_cap, ids_cap or
 * (token_ids given) token_ids_cap is below the result's counts,
 * POH_ERR_BAD_HANDLE for another kind of result.
 */
int poh_result_stats(poh_handle r, poh_stat_columns *out, poh_error *err);

/*
 * poh_result_errors copies an errors result (poh_record_result.errors) into
 * rows[0..rows_cap), in ascending index order, and the concatenated messages
 * into text[0..text_cap) (not NUL-terminated). Same return codes as
 * poh_result_stats.
 */
int poh_result_errors(poh_handle r, poh_row_error *rows, int64_t rows_cap, char *text, int64_t text_cap,
                      poh_error *err);

/*
 * poh_airdrop runs one airdrop operation, given as a JSON request (UTF-8,
 * NUL-terminated; an unknown key is an error naming it), and stores a text
 * result with a JSON answer in *result (poh_result_size / poh_result_text;
 * release with poh_free). holds is a holds result of poh_transfers for "run",
 * 0 otherwise; it is only read (free it as usual). Operations:
 *   {"op": "run", "rules": {...}, "rules_dir": DIR, "window": [t0, t1],
 *    "now": T, "pool": "N", "out": DIR, "previous": DIR}
 *     applies the campaign rules (see airdrop/rules.go; the Python package
 *     reads campaign.toml into this shape) to the holds over [t0, t1) as of
 *     now, splits pool exactly, and writes amounts.csv, breakdown.csv and the
 *     merkle files into out; previous (optional) is the previous epoch's
 *     output directory (its amounts.csv and manifest.json "epoch"). Answer:
 *     {"epoch": {"index", "pools"}, "holders", "awarded", "total", "removed",
 *      "roots", "files" (name -> sha256), "inputs" (exclusion files read)}.
 *   {"op": "verify", "path": FILE-or-DIR, "address": A (optional)}
 *     checks a merkle file whole (or an output directory: every tree, against
 *     amounts.csv and the manifest's sha256s), and A's claim; answer: a list
 *     of {"path", "format", "root", "claims", "total", "claim"}.
 *   {"op": "check", "rules": {...}}: validates rules; answer {}.
 * Returns POH_OK; POH_ERR_CAMPAIGN for a bad rule, request, input file, a rule
 * that leaves nobody, a cap that cannot fit the pool, an epoch going down, or
 * a tree that does not verify (message names which); POH_ERR_BAD_HANDLE;
 * POH_ERR_INVALID_ARGUMENT for NULL request or result.
 */
int poh_airdrop(poh_handle holds, char *request, poh_handle *result, poh_error *err);

/*
 * poh_result_text copies a text result into buf[0..cap), NUL-terminated.
 * Returns POH_ERR_BUFFER_TOO_SMALL (nothing written) when cap <= the size from
 * poh_result_size, POH_ERR_BAD_HANDLE for another kind of result.
 */
int poh_result_text(poh_handle r, char *buf, int64_t cap, poh_error *err);

/*
 * poh_free releases any handle. For an aggregator it stops its background GC
 * and unregisters its metrics; every later use of the handle gives
 * POH_ERR_BAD_HANDLE. For a durable aggregator it also flushes and syncs the
 * log, writes a snapshot if the log grew, stops the store's goroutines and
 * releases the data dir's lock; if that fails it returns POH_ERR_STORE (the
 * handle is released all the same, and everything acknowledged before is in
 * the log). For a result it frees its memory. Freeing 0 or an unknown or
 * already-freed handle returns POH_ERR_BAD_HANDLE and does nothing.
 */
int poh_free(poh_handle h, poh_error *err);

#ifdef __cplusplus
}
#endif

#endif /* POH_HOLDMETRICS_H */
