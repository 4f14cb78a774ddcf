/*
 * record: one log message as it travels from an ingest thread, through the
 * channel, to the writer.
 *
 * A record is one heap block: this header followed by the message bytes as
 * received (data[0..len)).  The parser does not copy: every field is a span
 * (offset and length) into data.  The channel carries a `struct record *`;
 * ownership moves with it, and the writer frees the record with
 * record_free() once every output has formatted it.
 */
#ifndef LOGRAIL_RECORD_H
#define LOGRAIL_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A byte range in record->data.  len == 0 means "absent" (RFC 5424's "-"). */
struct span {
    uint32_t off;
    uint32_t len;
};

enum record_syntax {
    RECORD_RAW = 0,     /* no <PRI>, or not parseable: the whole line is the message */
    RECORD_RFC3164 = 1, /* BSD syslog, including glibc's local form */
    RECORD_RFC5424 = 2,
};

enum record_flags {
    RECORD_F_TRUNCATED = 1u << 0,   /* cut at max_message */
    RECORD_F_PARSE_ERROR = 1u << 1, /* had a <PRI> but the rest was malformed */
    RECORD_F_HAS_TIME = 1u << 2,    /* ts_us/tz_min were parsed from the message */
    RECORD_F_TIME_HAS_YEAR = 1u << 3, /* ...and carried a year and zone (RFC 5424) */
    RECORD_F_HAS_CREDS = 1u << 4,   /* pid/uid/gid come from the kernel */
    /* Every byte of data is printable ASCII (' '..'~'), so no format has
     * an escape to make in it: set when the record is made, while its
     * bytes are in the making thread's cache, so that the writer can copy
     * them without a look.  A record's bytes do not change after it is
     * made (the parser only sets spans and fields). */
    RECORD_F_PRINTABLE = 1u << 5,
};

struct record_slab;

struct record {
    struct record_slab *slab; /* the block it was carved from; NULL: malloc'd */
    int64_t recv_us;   /* daemon's receive time, CLOCK_REALTIME, microseconds */
    int64_t ts_us;     /* time the message carried (UTC µs), if RECORD_F_HAS_TIME */
    int16_t tz_min;    /* the message's UTC offset in minutes, if it had one */
    uint8_t facility;  /* 0..23 */
    uint8_t severity;  /* 0..7 */
    uint8_t syntax;    /* enum record_syntax */
    uint8_t flags;     /* enum record_flags */
    uint16_t listener; /* index of the listen entry it arrived on */
    /* Trusted sender identity from SO_PEERCRED / SCM_CREDENTIALS; only
     * meaningful with RECORD_F_HAS_CREDS. A client cannot forge these. */
    pid_t pid;
    uid_t uid;
    gid_t gid;
    uint32_t len;      /* bytes in data (after truncation) */
    /* The acknowledgement slot of the connection that waits until this
     * record is written (daemon/acks.h: RELP); 0 for every other. */
    uint32_t ack;
    struct span timestamp; /* the timestamp text as sent */
    struct span host;
    struct span app;       /* RFC 5424 APP-NAME, RFC 3164 TAG */
    struct span procid;    /* RFC 5424 PROCID, RFC 3164 [pid] in the tag */
    struct span msgid;
    struct span sd;        /* RFC 5424 STRUCTURED-DATA, verbatim */
    struct span msg;       /* the free-form message */
    /* Trusted fields of a network sender, set by the ingest loop, never by
     * the parser: the peer's "IP:port" and, over TLS, its certificate's
     * subject.  They lie after the message and its NUL
     * (record_pool_new_ext()); ext_len counts those bytes. */
    struct span peer;
    struct span peer_name;
    uint32_t ext_len;
    char data[];
};

/* Facility and severity names, rsyslog's (so that filters and JSON match
 * what its users know), each list NULL-terminated: index = number. */
extern const char *const record_facility_names[25];
extern const char *const record_severity_names[9];

/* Allocate a record holding a copy of bytes[0..len), every field zero and
 * msg spanning the whole of it, flags RECORD_F_PRINTABLE when the bytes
 * are.  NULL on ENOMEM.  Any thread. */
struct record *record_new(const void *bytes, size_t len);

/* Bytes the record takes in memory (header, message, padding): what the
 * queue's byte budget counts.  Any thread that owns r. */
size_t record_footprint(const struct record *r);

/* Free a record, whichever way it was made.  Any thread. */
void record_free(struct record *r);

/* record_free() each of rs[0..n) (NULL entries are skipped), with one
 * atomic decrement per run of records from the same slab instead of one
 * per record, and return the sum of their record_footprint() (what the
 * writer credits back to the queue's byte budget).  A batch alternating
 * between two pools' slabs every 17 records, as the writer's do: 2.0 ns a
 * record, against 9.6 for record_free() alone. */
size_t record_free_many(struct record *const *rs, size_t n);

/*
 * A record pool carves records out of large blocks ("slabs") with a pointer
 * bump, for the thread that makes many records (an ingest loop); they are
 * freed with record_free() or record_free_many() on another thread (the
 * writer).  A slab goes back to malloc when its pool has moved on and its
 * last record is freed: the freeing side pays one atomic decrement per
 * record (per run of records, with record_free_many()), the carving side
 * none.  Records larger than a quarter of a slab are malloc'd on their
 * own.
 */
struct record_pool {
    struct record_slab *cur;
    size_t carved;     /* records carved from cur */
    size_t used;       /* bytes of cur carved */
    size_t slab_size;
};

/* slab_size 0: the default (64 KiB). */
void record_pool_init(struct record_pool *p, size_t slab_size);

/* As record_new(), from the pool.  Only the pool's owner thread. */
struct record *record_pool_new(struct record_pool *p, const void *bytes, size_t len);

/* The pool lets go of its current slab (records carved from it stay valid
 * until freed).  The pool may be used again afterwards. */
void record_pool_release(struct record_pool *p);

/* As record_pool_new(), with ext[0..ext_len) stored after the message
 * (and its NUL), outside every span the parser sets, for the trusted
 * fields peer and peer_name: the caller points them into it.  NULL on
 * ENOMEM. */
struct record *record_pool_new_ext(struct record_pool *p, const void *bytes, size_t len,
                                   const void *ext, size_t ext_len);

/* Every span absent ({0, 0}), msg included: where record_new() starts the
 * parser's fields and where the parser starts over. */
static inline void record_clear_spans(struct record *r)
{
    static const struct span none = {0, 0};
    r->timestamp = none;
    r->host = none;
    r->app = none;
    r->procid = none;
    r->msgid = none;
    r->sd = none;
    r->msg = none;
}

static inline const char *record_at(const struct record *r, struct span s)
{
    return r->data + s.off;
}

#endif
