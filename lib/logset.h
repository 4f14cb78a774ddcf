/*
 * logset: the files that hold one output's records, oldest first.
 *
 * An output writes its live file DIR/BASE; rotation renames it to an
 * archive DIR/BASE.YYYYmmddTHHMMSSZ.NNN, which may later become .gz or .zst
 * (lib/archive.h has the names, and archive_parse() reads them here).  A
 * logset is the archives in age order -- by parsed (stamp, sequence), not
 * by the bytes of the names -- followed by the live file.  When an archive
 * exists both plain and compressed (compression has just finished and the
 * plain copy is about to go), the plain one is listed: both hold the same
 * bytes, and the plain one can be searched without decompressing.  Half-
 * written compressed copies (.tmp) are never listed.
 *
 * A templated output ("/var/log/%{app}.log") is many live files;
 * logset_glob() finds the ones that exist now.
 *
 * Nothing here keeps files open, so a listing is a snapshot: a file may be
 * renamed or deleted before it is opened, which readers must expect.
 * Any thread; no shared state.
 */
#ifndef LOGRAIL_LOGSET_H
#define LOGRAIL_LOGSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "archive.h"

struct logset_file {
    char *path;             /* owned */
    bool live;              /* the live file (always last) */
    struct archive_id id;   /* archives: their identity */
    enum archive_form form; /* archives: plain, .gz or .zst; live: plain */
    int64_t rotated;        /* archives: rotation time in seconds (UTC), from the name */
    dev_t dev;              /* from stat(2) at listing time */
    ino_t ino;
    int64_t size;           /* bytes on disk at listing time */
};

struct logset {
    struct logset_file *v;
    size_t n;
};

/* List the archives of the live file at path and then path itself (when it
 * exists) into *out, which the caller frees with logset_free().  A missing
 * directory gives an empty set.  Returns 0 or a negative errno (-ENOMEM, or
 * the error of opening the directory other than ENOENT). */
int logset_scan(const char *path, struct logset *out);

/* Only the archives newer than after (all with after = {-1, 0}). */
int logset_scan_after(const char *path, struct archive_id after, struct logset *out);

void logset_free(struct logset *s);

/* The rotation time, in seconds since the epoch (UTC), of an archive stamp
 * YYYYmmddHHMMSS. */
int64_t logset_stamp_seconds(int64_t stamp);

/* Is name (a file name, no directory) an archive of some file, that is,
 * does it end in .YYYYmmddTHHMMSSZ.NNN[.gz|.zst][.tmp]? */
bool logset_is_archive_name(const char *name);

/* The same, with the archive's identity and form: the length of the live
 * file's name that it is an archive of, or -EINVAL. */
int logset_parse_name(const char *name, struct archive_id *id, enum archive_form *form,
                      bool *tmp);

/* Does path hold a %{...} placeholder? */
bool logset_is_template(const char *path);

/* The live files that a templated path names now: each %{...} stands for
 * any one path component part (glob(3)'s '*'), archives are left out.
 * *paths is a malloc'd array of malloc'd strings, sorted; free it with
 * logset_free_paths().  0 (possibly with *n = 0) or a negative errno. */
int logset_glob(const char *tmpl, char ***paths, size_t *n);
void logset_free_paths(char **paths, size_t n);

#endif
