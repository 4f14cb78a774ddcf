/*
 * logset: a live file and its archives, oldest first.  See logset.h.
 */
#include "logset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t logset_stamp_seconds(int64_t stamp)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int64_t date = stamp / 1000000, t = stamp % 1000000;
    tm.tm_year = (int)(date / 10000 - 1900);
    tm.tm_mon = (int)(date / 100 % 100 - 1);
    tm.tm_mday = (int)(date % 100);
    tm.tm_hour = (int)(t / 10000);
    tm.tm_min = (int)(t / 100 % 100);
    tm.tm_sec = (int)(t % 100);
    return (int64_t)timegm(&tm);
}

static int cmp_file(const void *a, const void *b)
{
    const struct logset_file *x = a, *y = b;
    int c = archive_id_cmp(x->id, y->id);
    if (c != 0)
        return c;
    /* Plain first, so that it wins over its compressed copy. */
    return (int)x->form - (int)y->form;
}

static int push(struct logset *s, size_t *cap, struct logset_file *f)
{
    if (s->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct logset_file *v = realloc(s->v, nc * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        s->v = v;
        *cap = nc;
    }
    s->v[s->n++] = *f;
    return 0;
}

/* Split path into a directory (".") and a base name. */
static int split(const char *path, char *dir, size_t dlen, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, dlen, ".");
        *base = path;
        return 0;
    }
    size_t n = (size_t)(slash - path);
    if (n == 0)
        n = 1; /* "/x": the root */
    if (n >= dlen)
        return -ENAMETOOLONG;
    memcpy(dir, path, n);
    dir[n] = '\0';
    *base = slash + 1;
    return 0;
}

int logset_scan_after(const char *path, struct archive_id after, struct logset *out)
{
    char dir[PATH_MAX];
    const char *base;
    out->v = NULL;
    out->n = 0;
    if (path == NULL || *path == '\0')
        return -EINVAL;
    int rc = split(path, dir, sizeof(dir), &base);
    if (rc != 0)
        return rc;
    size_t cap = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    int dfd = dirfd(d);
    struct dirent *de;
    for (;;) {
        errno = 0;
        if ((de = readdir(d)) == NULL) {
            rc = -errno;
            break;
        }
        struct logset_file f;
        memset(&f, 0, sizeof(f));
        bool tmp;
        if (archive_parse(de->d_name, base, &f.id, &f.form, &tmp) != 0 || tmp)
            continue;
        if (archive_id_cmp(f.id, after) <= 0)
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue; /* gone meanwhile, or not a file */
        f.dev = st.st_dev;
        f.ino = st.st_ino;
        f.size = st.st_size;
        f.rotated = logset_stamp_seconds(f.id.stamp);
        size_t n = strlen(dir) + strlen(de->d_name) + 2;
        if ((f.path = malloc(n)) == NULL) {
            rc = -ENOMEM;
            break;
        }
        if (strchr(path, '/') == NULL)
            snprintf(f.path, n, "%s", de->d_name); /* as the caller named the live file */
        else
            snprintf(f.path, n, "%s/%s", dir, de->d_name);
        if ((rc = push(out, &cap, &f)) != 0) {
            free(f.path);
            break;
        }
    }
    closedir(d);
    if (rc != 0) {
        logset_free(out);
        return rc;
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_file);
    /* One entry per archive: drop a compressed copy that follows its plain
     * original. */
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (k > 0 && archive_id_cmp(out->v[k - 1].id, out->v[i].id) == 0) {
            free(out->v[i].path);
            continue;
        }
        out->v[k++] = out->v[i];
    }
    out->n = k;
    return 0;
}

int logset_scan(const char *path, struct logset *out)
{
    int rc = logset_scan_after(path, (struct archive_id){-1, 0}, out);
    if (rc != 0)
        return rc;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    struct logset_file f;
    memset(&f, 0, sizeof(f));
    f.live = true;
    f.dev = st.st_dev;
    f.ino = st.st_ino;
    f.size = st.st_size;
    f.rotated = INT64_MAX;
    if ((f.path = strdup(path)) == NULL) {
        logset_free(out);
        return -ENOMEM;
    }
    size_t cap = out->n;
    if (push(out, &cap, &f) != 0) {
        free(f.path);
        logset_free(out);
        return -ENOMEM;
    }
    return 0;
}

void logset_free(struct logset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].path);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static bool all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

int logset_parse_name(const char *name, struct archive_id *id, enum archive_form *form,
                      bool *tmp)
{
    /* ".YYYYmmddTHHMMSSZ." is 18 bytes; try every '.' that could start it. */
    for (const char *p = strchr(name, '.'); p != NULL; p = strchr(p + 1, '.')) {
        if (strlen(p) < 18 + 3 || !all_digits(p + 1, 8) || p[9] != 'T' ||
            !all_digits(p + 10, 6) || p[16] != 'Z' || p[17] != '.')
            continue;
        size_t bl = (size_t)(p - name);
        char base[NAME_MAX + 1];
        if (bl == 0 || bl > NAME_MAX)
            continue;
        memcpy(base, name, bl);
        base[bl] = '\0';
        if (archive_parse(name, base, id, form, tmp) == 0)
            return (int)bl;
    }
    return -EINVAL;
}

bool logset_is_archive_name(const char *name)
{
    struct archive_id id;
    enum archive_form form;
    bool tmp;
    return logset_parse_name(name, &id, &form, &tmp) >= 0;
}

bool logset_is_template(const char *path)
{
    return path != NULL && strstr(path, "%{") != NULL;
}

void logset_free_paths(char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

int logset_glob(const char *tmpl, char ***paths, size_t *n)
{
    *paths = NULL;
    *n = 0;
    size_t len = strlen(tmpl);
    char *pat = malloc(2 * len + 1);
    if (pat == NULL)
        return -ENOMEM;
    /* Each placeholder becomes '*'; glob's own special characters in the
     * rest are escaped so that they match only themselves. */
    char *o = pat;
    for (const char *p = tmpl; *p;) {
        if (p[0] == '%' && p[1] == '{') {
            const char *e = strchr(p, '}');
            if (e != NULL) {
                *o++ = '*';
                p = e + 1;
                continue;
            }
        }
        if (strchr("*?[\\", *p) != NULL)
            *o++ = '\\';
        *o++ = *p++;
    }
    *o = '\0';
    glob_t g;
    int gr = glob(pat, 0, NULL, &g);
    free(pat);
    if (gr == GLOB_NOMATCH)
        return 0;
    if (gr != 0)
        return gr == GLOB_NOSPACE ? -ENOMEM : -EIO;
    char **v = calloc(g.gl_pathc ? g.gl_pathc : 1, sizeof(*v));
    if (v == NULL) {
        globfree(&g);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *p = g.gl_pathv[i];
        const char *b = strrchr(p, '/');
        struct stat st;
        if (logset_is_archive_name(b ? b + 1 : p) || stat(p, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if ((v[k] = strdup(p)) == NULL) {
            logset_free_paths(v, k);
            globfree(&g);
            return -ENOMEM;
        }
        k++;
    }
    globfree(&g);
    *paths = v;
    *n = k;
    return 0;
}
