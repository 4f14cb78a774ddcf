/*
 * frame: cut a byte stream into syslog messages.
 *
 * One `struct frame` belongs to one stream connection.  The ingest thread
 * that owns the connection feeds it whatever read() returned; the framer
 * calls back once per complete message.  It knows nothing of sockets.
 *
 * The framing of a connection is decided by its very first byte:
 *
 *  - An ASCII digit selects RFC 6587 octet counting: every message is
 *    "MSG-LEN SP SYSLOG-MSG", MSG-LEN being a decimal count of the bytes that
 *    follow (no leading zero, 1 to 4294967295).  The body is emitted exactly
 *    as counted: nothing is stripped.  A LF or CR between two frames (some
 *    senders end each frame with one) is skipped.
 *  - Anything else selects newline framing: a message ends at LF or at NUL
 *    (glibc's syslog(3) and Python's SysLogHandler end each message on a
 *    stream socket with a NUL and send no LF), one CR just before the end
 *    (or at the end of a final line) is dropped, and empty lines are
 *    skipped, since they carry nothing worth a record.
 *
 * A message longer than max_message is cut at max_message bytes and emitted
 * once, at once, with FRAME_TRUNCATED; the rest of it (to its LF, or to the
 * end of its octet count) is read and discarded, and the next message is
 * framed normally.  The framer thus holds at most max_message + 1 bytes per
 * connection however long the lines a client sends.
 *
 * A bad octet count (a non-digit where the count or its SP should be, a
 * leading zero, a count of 0, more than 10 digits or more than 4294967295)
 * cannot be resynchronised: we do not know where the next frame starts.  The
 * framer then switches the connection to newline framing for good, and the
 * bytes from the start of the bad count to the next LF become one message
 * flagged FRAME_BAD_COUNT, so that nothing the client sent is silently lost.
 *
 * At end of stream, frame_finish() emits what is left: a final line without
 * LF is an ordinary message (no flag: many clients end that way); a frame
 * whose count promised more bytes than arrived is emitted with the bytes that
 * did arrive and FRAME_INCOMPLETE; digits of a count never followed by SP are
 * emitted as they are with FRAME_INCOMPLETE.  A count and its SP with no
 * body byte after them carry no message and emit nothing.
 *
 * Invalid UTF-8 and control characters pass through untouched, and so do
 * NUL bytes in octet-counted frames (in newline framing a NUL ends the
 * message); escaping them is the writer's business.
 */
#ifndef LOGRAIL_FRAME_H
#define LOGRAIL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Flags passed to the emit callback. */
enum frame_flags {
    FRAME_TRUNCATED = 1u << 0,  /* cut at max_message; the rest was discarded */
    FRAME_INCOMPLETE = 1u << 1, /* end of stream inside an octet-counted frame */
    FRAME_BAD_COUNT = 1u << 2,  /* a bad octet count: the line, as it came */
};

enum frame_mode {
    FRAME_MODE_UNKNOWN = 0, /* no byte seen yet */
    FRAME_MODE_LF = 1,      /* newline-delimited (RFC 6587 "octet stuffing") */
    FRAME_MODE_OCTET = 2,   /* RFC 6587 octet counting */
};

/* The smallest max_message frame_init() accepts.  Ten digits of a bad octet
 * count must fit in the partial buffer; tests like small limits. */
#define FRAME_MIN_MESSAGE 16

/* Called once per message.  msg[0..len) is valid only during the call: it
 * points either into the buffer given to frame_feed() (the message lay wholly
 * inside it, so it is not copied) or into the framer's own partial buffer.
 * len is never 0 and never more than max_message.  Returning nonzero stops
 * framing; frame_feed() or frame_finish() then returns that value. */
typedef int (*frame_emit_fn)(void *ctx, const char *msg, size_t len,
                             unsigned flags);

/* Per-connection framing state.  The fields are private; the struct is
 * public so that a connection can embed it and no allocation is needed
 * until a message spans two reads. */
struct frame {
    char *buf;          /* partial message, allocated on first need */
    size_t buf_cap;     /* allocated size of buf, at most max_message + 1 */
    size_t buf_len;     /* bytes of the current message held in buf */
    size_t max_message; /* longest message emitted whole */
    uint64_t count;     /* octet mode: the count being read, then the frame's */
    uint64_t remain;    /* octet mode: bytes of the frame still to come */
    unsigned flags;     /* flags of the message being collected */
    uint8_t mode;       /* enum frame_mode */
    uint8_t state;      /* private state machine, see frame.c */
    uint8_t ndigits;    /* octet mode: digits of the count read so far */
    char digits[10];    /* ...and the digits themselves, for FRAME_BAD_COUNT */
};

/* Prepare f for a new connection.  max_message must lie in
 * [FRAME_MIN_MESSAGE, UINT32_MAX - 1].  Allocates nothing.  0 or -EINVAL. */
int frame_init(struct frame *f, size_t max_message);

/* Release the partial buffer.  f may be initialised again afterwards. */
void frame_free(struct frame *f);

/* Frame the next len bytes of the stream.  emit is called for every message
 * completed by them.  Returns 0; or -ENOMEM when the partial buffer could
 * not be grown: the message that needed it is dropped, every other message
 * is still emitted and framing stays in step; or the nonzero value an emit
 * returned, in which case the rest of buf is not framed and the
 * connection's framing is lost: the caller should only frame_free() it.
 * The daemon maps FRAME_TRUNCATED to RECORD_F_TRUNCATED.  Called by the
 * thread that owns the connection; no locking. */
int frame_feed(struct frame *f, const char *buf, size_t len,
               frame_emit_fn emit, void *ctx);

/* End of stream: emit what is left (see the top of this file), then reset f
 * to the state of a fresh frame_init(), keeping its buffer for reuse.
 * Returns 0 or what emit returned. */
int frame_finish(struct frame *f, frame_emit_fn emit, void *ctx);

/* The framing the connection's first byte selected. */
enum frame_mode frame_mode(const struct frame *f);

/* One datagram is one message.  Drop one trailing NUL (Python's
 * SysLogHandler appends one), then one trailing LF and a CR before it.
 * *len may become 0. */
void frame_trim_datagram(const char *p, size_t *len);

/* frame_trim_datagram(), then cut the datagram to max_message bytes.
 * Returns FRAME_TRUNCATED when it was cut, else 0. */
unsigned frame_datagram(const char *p, size_t *len, size_t max_message);

/* logger --octet-count frames its datagrams as it frames a stream:
 * "39 <13>Nov 26 ...".  A datagram is already one message, so the count
 * says nothing new; it is removed only when it is well formed (no leading
 * zero, at most 10 digits, then SP) and counts exactly the rest of the
 * datagram, so that a message which merely starts with a number is kept as
 * it was sent.  Moves *p past the count and shortens *len; true when it
 * did. */
bool frame_strip_count(const char **p, size_t *len);

#endif
