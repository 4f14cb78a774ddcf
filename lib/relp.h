/*
 * relp: the Reliable Event Logging Protocol, without sockets.
 *
 * RELP (librelp's doc/relp.md) carries syslog records over TCP with an
 * application-level acknowledgement per record.  Every message is a frame:
 *
 *     TXNR SP COMMAND SP DATALEN [SP DATA] LF
 *
 * TXNR and DATALEN are 1 to 9 decimal digits, COMMAND 1 to 32 ASCII
 * letters; DATA (DATALEN octets, anything) and its SP are present only when
 * DATALEN is not 0.  The client numbers its commands 1, 2, ... 999999999,
 * then 1 again; TXNR 0 is reserved for hints (the server's "serverclose").
 * The server answers each command with an "rsp" frame of the same TXNR whose
 * data is "CODE SP TEXT [LF DATA]" (200 is OK, anything else an error).
 * A session starts with "open", whose data are offers, one per line,
 * "name=value[,value...]": the client offers relp_version, relp_software and
 * commands=syslog; the server answers "200 OK" followed by the offers it
 * accepts.  Records travel as "syslog" commands; "close" ends the session.
 *
 * This file has the four parts a client and a server share, each usable
 * from a libuv loop without blocking, knowing nothing of sockets or config:
 *
 *  - relp_encode(): one frame into a caller's buffer;
 *  - struct relp_parser: frames out of a byte stream fed in chunks of any
 *    size, with a bounded DATALEN and a strict grammar;
 *  - relp_rsp_parse() and the offer helpers: what a frame's data means;
 *  - struct relp_window: the client's frames sent but not yet acknowledged,
 *    and how far the spool cursor may advance.
 *
 * None of it locks: each object belongs to the one thread (the loop) that
 * owns the connection.  Functions return 0 (or a count) or a negative errno.
 */
#ifndef LOGRAIL_RELP_H
#define LOGRAIL_RELP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RELP_TXNR_MAX 999999999u    /* then the next TXNR is 1 */
#define RELP_DATALEN_MAX 999999999u /* nine digits */
#define RELP_COMMAND_MAX 32         /* letters in a command */

/* The longest header relp_encode_header() writes: nine digits, SP, a
 * 32-letter command, SP, nine digits, SP. */
#define RELP_HEADER_MAX (9 + 1 + RELP_COMMAND_MAX + 1 + 9 + 1)

/* librelp's and rsyslog's default limit for DATALEN (128 KiB): a frame
 * longer than this is refused by imrelp unless configured otherwise. */
#define RELP_DEFAULT_MAX_DATA (128u * 1024u)

/* The TXNR after txnr: 1 after RELP_TXNR_MAX (and after 0). */
static inline uint32_t relp_txnr_next(uint32_t txnr)
{
    return txnr >= RELP_TXNR_MAX ? 1 : txnr + 1;
}

/* ---- Encoding ---------------------------------------------------------- */

/* Bytes of the frame relp_encode() would write for this TXNR, a command of
 * cmdlen letters and datalen bytes of data (header, data, trailer). */
size_t relp_frame_size(uint32_t txnr, size_t cmdlen, size_t datalen);

/* Write "TXNR SP COMMAND SP DATALEN" and, when datalen > 0, the SP before
 * the data, into buf[0..cap): the data and the LF trailer are the caller's
 * to send next (so that a record can go out from where it lies, without a
 * copy).  Returns the bytes written; -EINVAL when txnr exceeds
 * RELP_TXNR_MAX, the command is not 1..32 letters or datalen exceeds
 * RELP_DATALEN_MAX; -ENOBUFS when cap is too small (nothing useful is
 * written then).  RELP_HEADER_MAX bytes are always enough. */
ssize_t relp_encode_header(char *buf, size_t cap, uint32_t txnr,
                           const char *cmd, size_t datalen);

/* Write one whole frame (header, data[0..datalen), LF) into buf[0..cap).
 * Returns the bytes written (relp_frame_size()) or the errors of
 * relp_encode_header().  data may be NULL when datalen is 0. */
ssize_t relp_encode(char *buf, size_t cap, uint32_t txnr, const char *cmd,
                    const void *data, size_t datalen);

/* Write an "rsp" frame for txnr: data "CODE SP TEXT", then, when extralen >
 * 0, LF and extra[0..extralen).  code must be 100..999 and text must hold
 * no LF (-EINVAL).  Returns the bytes written, or -ENOBUFS / -EINVAL. */
ssize_t relp_encode_rsp(char *buf, size_t cap, uint32_t txnr, int code,
                        const char *text, const void *extra, size_t extralen);

/* ---- Parsing a stream of frames ---------------------------------------- */

/* One frame, as relp_parser_next() returns it.  command is NUL-terminated.
 * data[0..datalen) is valid until the next call on the parser (or its
 * reset/free): it points into the chunk given to that call when the data
 * lay wholly inside it, else into the parser's own buffer.  data is NULL
 * when datalen is 0. */
struct relp_frame {
    uint32_t txnr;
    uint32_t datalen;
    const char *data;
    char command[RELP_COMMAND_MAX + 1];
};

/* Incremental frame parser for either direction.  The fields are private;
 * the struct is public so that a connection can embed it.  It holds at most
 * max_data bytes of one frame's data, allocated when a frame's data spans
 * two chunks. */
struct relp_parser {
    char *buf;         /* data of a frame that spans chunks */
    size_t buf_cap;    /* allocated bytes of buf */
    size_t buf_len;    /* data bytes collected in buf */
    uint32_t max_data; /* largest DATALEN accepted */
    uint32_t txnr;     /* the frame being read */
    uint32_t datalen;
    uint8_t state;   /* private state machine, see relp.c */
    uint8_t ndigits; /* digits of TXNR or DATALEN read so far */
    uint8_t cmdlen;  /* letters of the command read so far */
    int error;       /* sticky: once < 0, every call returns it */
    char command[RELP_COMMAND_MAX + 1];
};

/* Prepare p for a new connection; frames whose DATALEN exceeds max_data
 * (1..RELP_DATALEN_MAX) are refused with -EMSGSIZE.  Allocates nothing.
 * 0 or -EINVAL. */
int relp_parser_init(struct relp_parser *p, uint32_t max_data);

/* Forget any partial frame and a sticky error, keeping the buffer: for a
 * new connection (after a reconnect) with the same limit. */
void relp_parser_reset(struct relp_parser *p);

/* Release the buffer; p may be initialised again afterwards. */
void relp_parser_free(struct relp_parser *p);

/* Parse buf[0..len) until one frame is complete.  *used is set to the bytes
 * of buf consumed (the caller passes the rest in the next call, so it may
 * stop between two frames, e.g. while its channel is full).  Returns 1 with
 * the frame in *out; 0 when all of buf was consumed without completing a
 * frame; -EPROTO on a violation of the grammar (a non-digit in TXNR or
 * DATALEN, more than nine digits, a command that is empty, longer than 32
 * letters or holds a non-letter, a missing SP, or a byte other than LF
 * where the trailer belongs); -EMSGSIZE when DATALEN exceeds max_data
 * (known as soon as its digits say so, before any data arrives); -ENOMEM.
 * An error is sticky: the stream cannot be resynchronised and the peer is
 * to be disconnected (RELP's own rule).  TXNR 0 is returned like any other;
 * whether it is acceptable is for the session to decide. */
int relp_parser_next(struct relp_parser *p, const char *buf, size_t len,
                     size_t *used, struct relp_frame *out);

/* ---- The data of rsp and open ------------------------------------------ */

/* An rsp frame's data: "CODE SP TEXT [LF DATA]".  text and data point into
 * the frame's data. */
struct relp_rsp {
    int code; /* three digits: 200 is OK */
    const char *text;
    size_t textlen;
    const char *data; /* after the first LF; NULL when there is none */
    size_t datalen;
};

/* Split an rsp frame's data.  0; -ENODATA when there is no data at all,
 * which is how rsyslog's imrelp (librelp 1.11) answers "close"
 * ("5 rsp 0"): the TXNR alone then says what was answered; -EPROTO when it
 * does not start with three digits and a SP. */
int relp_rsp_parse(const char *data, size_t len, struct relp_rsp *rsp);

/* One offer: "name[=value[,value...]]", name and value pointing into the
 * data.  value holds the whole comma-separated list. */
struct relp_offer {
    const char *name;
    size_t namelen;
    const char *value;
    size_t valuelen;
};

/* Iterate over the offers in data[*pos..len), one per line (empty lines are
 * skipped).  Returns 1 with the next offer in *o and *pos advanced; 0 at
 * the end; -EPROTO on an offer with an empty name or a name longer than 32
 * bytes (librelp's limit). */
int relp_offer_next(const char *data, size_t len, size_t *pos,
                    struct relp_offer *o);

/* Whether the offer's comma-separated value list holds item. */
bool relp_offer_has(const struct relp_offer *o, const char *item);

/* What an open offer (client to server) or the server's answer to it (the
 * part after "200 OK\n") says. */
struct relp_open {
    int version;         /* relp_version, or -1 when absent */
    bool syslog;         /* "commands" lists syslog */
    const char *software; /* relp_software's value, or NULL */
    size_t softwarelen;
};

/* Read the offers in data[0..len).  0; -EPROTO on a malformed offer, a
 * missing or non-numeric relp_version. */
int relp_open_parse(const char *data, size_t len, struct relp_open *o);

/* The data of the client's open command: "relp_version=0\nrelp_software=
 * SOFTWARE\ncommands=syslog".  Returns the bytes written into buf[0..cap)
 * or -ENOBUFS; -EINVAL when software holds a LF. */
ssize_t relp_open_offer(char *buf, size_t cap, const char *software);

/* The data of the server's rsp to an open it accepts: "200 OK\n" and the
 * same three offers.  Returns the bytes written or -ENOBUFS / -EINVAL. */
ssize_t relp_open_answer(char *buf, size_t cap, const char *software);

/* ---- The client's window ----------------------------------------------- */

/* The frames a sender has sent and not yet seen acknowledged, in the order
 * sent, each with the spool offset just past its record.  Acknowledgements
 * may come in any order; the spool cursor may advance only to the end of
 * the longest acknowledged prefix, which relp_window_acked_upto() gives.
 * The TXNRs pushed are consecutive in RELP's numbering (open and close
 * travel outside the window), so an acknowledgement finds its slot in
 * constant time.  The fields are private. */
struct relp_window {
    struct relp_window_slot {
        uint64_t end;   /* spool offset just past this frame's record */
        bool acked;
    } *slots;
    size_t cap;         /* most frames outstanding */
    size_t head;        /* slot of the oldest outstanding frame */
    size_t count;       /* frames outstanding */
    uint32_t head_txnr; /* TXNR of the oldest outstanding frame */
    uint32_t next_txnr; /* TXNR the next push must carry; 0: any */
    uint64_t upto;      /* end of the longest acknowledged prefix */
};

/* Room for cap (1..1048576) outstanding frames; the acknowledged prefix
 * starts at cursor, the spool offset the sender starts sending from.
 * 0, -EINVAL or -ENOMEM. */
int relp_window_init(struct relp_window *w, size_t cap, uint64_t cursor);

void relp_window_free(struct relp_window *w);

/* After a reconnect: forget every outstanding frame (they are resent from
 * cursor, normally relp_window_acked_upto()) and start again at cursor. */
void relp_window_reset(struct relp_window *w, uint64_t cursor);

/* Record that frame txnr, whose record ends at spool offset end, was sent.
 * The first push after init or reset may carry any TXNR.  0; -ENOBUFS when the window is full (the sender waits for an
 * acknowledgement before it sends more); -EINVAL when txnr is 0 or above
 * RELP_TXNR_MAX, does not follow the previous push's TXNR, or end lies
 * before the previous push's end (or before the cursor). */
int relp_window_push(struct relp_window *w, uint32_t txnr, uint64_t end);

/* The peer acknowledged txnr.  0; -ENOENT when txnr is not outstanding
 * (never sent, or acknowledged already): a protocol error on the peer's
 * side, after which the sender should disconnect. */
int relp_window_ack(struct relp_window *w, uint32_t txnr);

/* The spool offset up to which every record was acknowledged. */
uint64_t relp_window_acked_upto(const struct relp_window *w);

/* Frames outstanding, acknowledged ones behind an unacknowledged one
 * included (they still take a slot). */
static inline size_t relp_window_count(const struct relp_window *w)
{
    return w->count;
}

static inline bool relp_window_full(const struct relp_window *w)
{
    return w->count == w->cap;
}

#endif
