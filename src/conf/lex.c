/*
 * lex.c - config tokens and the directive tree, with `include` expanded.
 *
 * Tokens: bare words ("${name}" inside one is part of it, as in nginx),
 * double- or single-quoted strings (escapes \" or \' for the quote, \\ \n
 * \r \t; any other backslash is kept as written, so regexes read
 * naturally), and the three punctuation marks ; { }. A '#' at the start of a
 * token starts a comment that runs to the end of the line. Positions are
 * 1-based line and byte column.
 *
 * The tree builder reports syntax errors and keeps going: a missing ';'
 * ends the directive where the ';' belonged, a stray '}' or ';' is skipped,
 * an unterminated string ends its directive at the end of its line, an
 * unterminated block is reported at the end of its file.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf_int.h"

struct lexer {
    struct conf_state *st;
    const char *file;
    const char *dir;
    const char *p, *end, *line_start;
    uint32_t line;
    struct conf_tok peek;
    bool has_peek;
    bool keep_include; /* inside a `geo` block: its `include` reads a prefix list (conf/geo.c) */
};

static bool
is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool
is_ctl(unsigned char c)
{
    return (c < 0x20 && !is_space(c)) || c == 0x7f;
}

static bool
is_word_char(unsigned char c)
{
    return !is_space(c) && !is_ctl(c) && c != ';' && c != '{' && c != '}' && c != '"';
}

static struct conf_pos
here(const struct lexer *lx)
{
    struct conf_pos pos = {lx->file, lx->line, (uint32_t)(lx->p - lx->line_start) + 1};
    return pos;
}

static void
skip_blank(struct lexer *lx)
{
    while (lx->p < lx->end) {
        unsigned char c = (unsigned char)*lx->p;
        if (c == '\n') {
            lx->p++;
            lx->line++;
            lx->line_start = lx->p;
        } else if (is_space(c)) {
            lx->p++;
        } else if (c == '#') {
            const char *nl = memchr(lx->p, '\n', (size_t)(lx->end - lx->p));
            lx->p = nl != NULL ? nl : lx->end;
        } else if (is_ctl(c)) {
            struct conf_pos pos = here(lx);
            conf_err(lx->st, &pos, "invalid character 0x%02x", c);
            lx->p++;
        } else {
            return;
        }
    }
}

/* A byte lex_string drops from a string's text (after reporting it). */
static bool
dropped_in_string(unsigned char c)
{
    return is_ctl(c) && c != '\t';
}

/* A quoted string; lx->p is at the opening quote (" or '). Stops at the end of the line. */
static void
lex_string(struct lexer *lx, struct conf_tok *t)
{
    const char quote = *lx->p;
    const char *q = lx->p + 1;
    while (q < lx->end && *q != quote && *q != '\n') {
        if (*q == '\\' && q + 1 < lx->end && (q[1] == quote || q[1] == '\\'))
            q += 2;
        else
            q++;
    }
    char *out = gh_arena_alloc_aligned(lx->st->arena, (size_t)(q - lx->p) + 1, 1);
    size_t n = 0;
    for (const char *s = lx->p + 1; s < q; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\' && s + 1 < q && (s[1] == quote || s[1] == '\\')) {
            out[n++] = *++s;
        } else if (c == '\\' && s + 1 < q && (s[1] == 'n' || s[1] == 'r' || s[1] == 't')) {
            /* as in nginx: \n, \r, \t (header rules still reject CR and LF) */
            s++;
            out[n++] = *s == 'n' ? '\n' : *s == 'r' ? '\r' : '\t';
        } else if (dropped_in_string(c)) {
            struct conf_pos pos = {lx->file, lx->line, (uint32_t)(s - lx->line_start) + 1};
            conf_err(lx->st, &pos, "invalid character 0x%02x in string", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    t->type = TOK_STRING;
    t->text = out;
    t->len = (uint32_t)n;
    t->quote = quote;
    if (n != (size_t)(q - lx->p - 1)) { /* escapes: keep what was written, for positions */
        t->raw = gh_arena_strndup(lx->st->arena, lx->p + 1, (size_t)(q - lx->p - 1));
        t->raw_len = (uint32_t)(q - lx->p - 1);
    }
    if (q < lx->end && *q == quote) {
        lx->p = q + 1;
    } else {
        conf_err(lx->st, &t->pos, "unterminated string");
        t->unterminated = true;
        lx->p = q;
    }
}

struct conf_pos
conf_tok_pos(const struct conf_tok *t, size_t off)
{
    if (t->n_joined > 0) { /* the joined token off is in */
        uint32_t k = 0;
        while (k + 1 < t->n_joined && off >= t->joined[k].len)
            off -= t->joined[k++].len;
        t = &t->joined[k];
    }
    struct conf_pos pos = t->pos;
    if (t->type != TOK_STRING) {
        pos.col += (uint32_t)off;
        return pos;
    }
    size_t col = off;
    if (t->raw != NULL) { /* as lex_string decodes: an escape is two bytes as written */
        size_t i = 0;
        for (size_t d = 0; i < t->raw_len && d <= off; i++) {
            unsigned char c = (unsigned char)t->raw[i];
            unsigned char e = i + 1 < t->raw_len ? (unsigned char)t->raw[i + 1] : 0;
            if (dropped_in_string(c))
                continue;
            if (d++ == off)
                break;
            if (c == '\\' && (e == t->quote || e == '\\' || e == 'n' || e == 'r' || e == 't'))
                i++;
        }
        col = i;
    }
    pos.col += 1 + (uint32_t)col; /* past the opening quote */
    return pos;
}

static struct conf_tok
lex_next(struct lexer *lx)
{
    if (lx->has_peek) {
        lx->has_peek = false;
        return lx->peek;
    }
    struct conf_tok t = {0};
    skip_blank(lx);
    t.pos = here(lx);
    if (lx->p >= lx->end) {
        t.type = TOK_EOF;
        t.text = "end of file";
        t.end_col = t.pos.col;
        return t;
    }
    switch (*lx->p) {
    case ';':
        t.type = TOK_SEMI;
        t.text = ";";
        t.len = 1;
        lx->p++;
        break;
    case '{':
        t.type = TOK_LBRACE;
        t.text = "{";
        t.len = 1;
        lx->p++;
        break;
    case '}':
        t.type = TOK_RBRACE;
        t.text = "}";
        t.len = 1;
        lx->p++;
        break;
    case '"':
    case '\'': /* only at the start of a token: "don't" is one word */
        lex_string(lx, &t);
        break;
    default: {
        const char *s = lx->p;
        while (lx->p < lx->end) {
            if (*lx->p == '{' && lx->p > s && lx->p[-1] == '$') {
                /* "${name}" stays in the word, as in nginx: /x/${1}abc */
                const char *e = lx->p + 1;
                while (e < lx->end && is_word_char((unsigned char)*e))
                    e++;
                if (e == lx->end || *e != '}')
                    break;
                lx->p = e + 1;
            } else if (is_word_char((unsigned char)*lx->p)) {
                lx->p++;
            } else {
                break;
            }
        }
        t.type = TOK_WORD;
        t.text = gh_arena_strndup(lx->st->arena, s, (size_t)(lx->p - s));
        t.len = (uint32_t)(lx->p - s);
        break;
    }
    }
    t.end_col = (uint32_t)(lx->p - lx->line_start) + 1;
    return t;
}

static void
lex_unread(struct lexer *lx, const struct conf_tok *t)
{
    GH_ASSERT(!lx->has_peek);
    lx->peek = *t;
    lx->has_peek = true;
}

/* Skip tokens up to the '}' matching an already consumed '{' (or EOF). */
static void
skip_block(struct lexer *lx)
{
    uint32_t depth = 1;
    while (depth > 0 && !lx->st->stop) {
        struct conf_tok t = lex_next(lx);
        if (t.type == TOK_EOF)
            return;
        if (t.type == TOK_LBRACE)
            depth++;
        else if (t.type == TOK_RBRACE)
            depth--;
    }
}

/* After an error at a statement's start: skip to its ';' or past its block. */
static void
skip_statement(struct lexer *lx)
{
    for (;;) {
        struct conf_tok t = lex_next(lx);
        switch (t.type) {
        case TOK_SEMI:
        case TOK_EOF:
            return;
        case TOK_LBRACE:
            skip_block(lx);
            return;
        case TOK_RBRACE:
            lex_unread(lx, &t);
            return;
        default:
            break;
        }
    }
}

/* The directory part of path with its trailing '/' ("a/b/" for "a/b/c.conf"), or "". */
static const char *
dir_of(struct conf_state *st, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return "";
    return gh_arena_strndup(st->arena, path, (size_t)(slash - path) + 1);
}

static struct cnode *read_file(struct conf_state *st, const char *path,
                               const struct conf_pos *from);

/* Expand `include ARG;` at the end of *tail; returns the new tail. */
static struct cnode **
expand_include(struct lexer *lx, const struct cnode *n, struct cnode **tail)
{
    struct conf_state *st = lx->st;
    if (n->has_block) {
        conf_err(st, &n->name.pos, "directive 'include' takes no block");
        return tail;
    }
    if (n->n_args != 1) {
        conf_err(st, &n->name.pos, "'include' expects 1 argument, got %u", n->n_args);
        return tail;
    }
    const struct conf_tok *arg = &n->args[0];
    if (st->flags & GH_CONF_NO_INCLUDE) {
        conf_err(st, &n->name.pos, "'include' is not allowed here");
        return tail;
    }
    if (arg->len == 0) {
        conf_err(st, &arg->pos, "empty path in 'include'");
        return tail;
    }
    if (st->n_incl > GH_CONF_MAX_INCLUDE_DEPTH) {
        conf_err(st, &n->name.pos, "include nested too deeply (limit %d)",
                 GH_CONF_MAX_INCLUDE_DEPTH);
        return tail;
    }
    const char *path = arg->text;
    if (path[0] != '/' && lx->dir[0] != '\0')
        path = gh_arena_sprintf(st->arena, "%s%s", lx->dir, path);

    struct cnode *list = NULL;
    if (strpbrk(arg->text, "*?[") == NULL) {
        list = read_file(st, path, &arg->pos);
        *tail = list;
    } else {
        glob_t g;
        int rc = glob(path, 0, NULL, &g);
        if (rc == 0) {
            for (size_t i = 0; i < g.gl_pathc && !st->stop; i++) {
                const char *p = gh_arena_strdup(st->arena, g.gl_pathv[i]);
                *tail = read_file(st, p, &arg->pos);
                while (*tail != NULL)
                    tail = &(*tail)->next;
            }
        } else if (rc != GLOB_NOMATCH) {
            conf_err(st, &arg->pos, "cannot expand include pattern '%s'",
                     conf_show(st, path, strlen(path)));
        }
        globfree(&g);
    }
    while (*tail != NULL)
        tail = &(*tail)->next;
    return tail;
}

static bool parse_list(struct lexer *lx, const struct conf_tok *open, struct cnode **tail,
                       uint32_t depth);

/* A directive whose name token was just read; appends it (or its include) to *tail. */
static struct cnode **
parse_directive(struct lexer *lx, const struct conf_tok *name, struct cnode **tail, uint32_t depth)
{
    struct conf_state *st = lx->st;
    struct cnode *n = gh_arena_alloc(st->arena, sizeof(*n));
    n->name = *name;
    n->dir = lx->dir;
    uint32_t cap = 0;
    const struct conf_tok *prev = name;
    bool ok = true;
    for (;;) {
        struct conf_tok t = lex_next(lx);
        if (t.type == TOK_WORD || t.type == TOK_STRING) {
            /* A known directive name first on a new line: the ';' before it is missing. */
            if (t.type == TOK_WORD && t.pos.line > prev->pos.line &&
                conf_is_directive(t.text, t.len)) {
                struct conf_pos at = {prev->pos.file, prev->pos.line, prev->end_col};
                conf_err(st, &at, "missing ';' after '%s'", conf_show(st, name->text, name->len));
                lex_unread(lx, &t);
                ok = false;
                break;
            }
            if (n->n_args == cap) {
                cap = cap ? cap * 2 : 4;
                struct conf_tok *a = gh_arena_alloc(st->arena, cap * sizeof(*a));
                if (n->n_args > 0)
                    memcpy(a, n->args, n->n_args * sizeof(*a));
                n->args = a;
            }
            n->args[n->n_args++] = t;
            prev = &n->args[n->n_args - 1];
            if (t.unterminated) {
                /* the string took the rest of the line, and the directive ends with it: what
                 * follows is the next one (no second error about a missing ';') */
                ok = false;
                break;
            }
            continue;
        }
        if (t.type == TOK_SEMI)
            break;
        if (t.type == TOK_LBRACE) {
            if (depth + 1 > GH_CONF_MAX_BLOCK_DEPTH) {
                conf_err(st, &t.pos, "blocks nested too deeply (limit %d)",
                         GH_CONF_MAX_BLOCK_DEPTH);
                skip_block(lx);
                ok = false;
                break;
            }
            n->has_block = true;
            bool keep = lx->keep_include;
            lx->keep_include = name->len == 3 && memcmp(name->text, "geo", 3) == 0;
            parse_list(lx, &n->name, &n->children, depth + 1);
            lx->keep_include = keep;
            break;
        }
        /* '}' or end of file */
        struct conf_pos at = {prev->pos.file, prev->pos.line, prev->end_col};
        conf_err(st, &at, "missing ';' after '%s'", conf_show(st, name->text, name->len));
        lex_unread(lx, &t);
        ok = false;
        break;
    }
    if (name->len == 7 && memcmp(name->text, "include", 7) == 0 && !lx->keep_include) {
        if (ok)
            tail = expand_include(lx, n, tail);
        return tail;
    }
    *tail = n;
    return &n->next;
}

/*
 * Directives up to the '}' closing open (or to the end of the file when open is
 * NULL), appended at *tail. Returns false when the end of the file came first.
 */
static bool
parse_list(struct lexer *lx, const struct conf_tok *open, struct cnode **tail, uint32_t depth)
{
    struct conf_state *st = lx->st;
    while (!st->stop) {
        struct conf_tok t = lex_next(lx);
        switch (t.type) {
        case TOK_EOF:
            if (open != NULL)
                conf_err(st, &t.pos, "unterminated block '%s' opened at %u:%u",
                         conf_show(st, open->text, open->len), open->pos.line, open->pos.col);
            return false;
        case TOK_RBRACE:
            if (open != NULL)
                return true;
            conf_err(st, &t.pos, "unexpected '}'");
            break;
        case TOK_SEMI:
            conf_err(st, &t.pos, "unexpected ';'");
            break;
        case TOK_LBRACE:
            conf_err(st, &t.pos, "unexpected '{'");
            skip_block(lx);
            break;
        case TOK_STRING:
            if (t.unterminated) /* reported; it took the rest of the line */
                break;
            conf_err(st, &t.pos, "expected a directive name, got string \"%s\"",
                     conf_show(st, t.text, t.len));
            skip_statement(lx);
            break;
        case TOK_WORD:
            tail = parse_directive(lx, &t, tail, depth);
            break;
        }
    }
    return true;
}

static struct cnode *
read_buffer(struct conf_state *st, const char *file, const char *dir, const char *text, size_t len)
{
    struct lexer lx = {0};
    lx.st = st;
    lx.file = file;
    lx.dir = dir;
    lx.p = lx.line_start = text;
    lx.end = text + len;
    lx.line = 1;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) /* UTF-8 byte order mark */
        lx.p += 3;
    struct cnode *root = NULL;
    parse_list(&lx, NULL, &root, 0);
    return root;
}

/* Read path (for an include: from is where it was named) into a directive list. */
static struct cnode *
read_file(struct conf_state *st, const char *path, const struct conf_pos *from)
{
    struct conf_pos at = {path, 0, 0};
    const struct conf_pos *pos = from != NULL ? from : &at;
    /* an included file is named in the message; the top file already is its position */
    const char *shown = from != NULL
                            ? gh_arena_sprintf(st->arena, "'%s'", conf_show(st, path, strlen(path)))
                            : "config file";
    struct cnode *root = NULL;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd == -1) {
        if (errno == ENOENT && from != NULL)
            conf_err(st, pos, "include file %s not found", shown);
        else
            conf_err(st, pos, "cannot open %s: %s", shown, strerror(errno));
        goto out;
    }
    struct stat sb;
    if (fstat(fd, &sb) == -1) {
        conf_err(st, pos, "cannot stat %s: %s", shown, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        conf_err(st, pos, "%s is not a regular file", shown);
        goto out;
    }
    if (sb.st_size > GH_CONF_MAX_FILE_SIZE) {
        conf_err(st, pos, "%s is too large (limit %u bytes)", shown, GH_CONF_MAX_FILE_SIZE);
        goto out;
    }
    for (uint32_t i = 0; i < st->n_incl; i++) {
        if (st->incl[i].dev == sb.st_dev && st->incl[i].ino == sb.st_ino) {
            conf_err(st, pos, "include cycle: %s is already being read", shown);
            goto out;
        }
    }
    size_t size = (size_t)sb.st_size, len = 0;
    buf = gh_xmalloc(size + 1);
    while (len < size) {
        ssize_t r = read(fd, buf + len, size - len);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            conf_err(st, pos, "cannot read %s: %s", shown, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    GH_ASSERT(st->n_incl < GH_ARRAY_LEN(st->incl));
    st->incl[st->n_incl].dev = sb.st_dev;
    st->incl[st->n_incl].ino = sb.st_ino;
    st->n_incl++;
    conf_note_read(st, path, from);
    root = read_buffer(st, path, dir_of(st, path), buf, len);
    st->n_incl--;
out:
    free(buf);
    if (fd != -1)
        close(fd);
    return root;
}

struct cnode *
conf_read_file(struct conf_state *st, const char *path)
{
    return read_file(st, gh_arena_strdup(st->arena, path), NULL);
}

struct cnode *
conf_read_string(struct conf_state *st, const char *name, const char *text, size_t len)
{
    /* The name is for messages only: relative includes resolve against the cwd. */
    const char *file = gh_arena_strdup(st->arena, name);
    conf_note_read(st, file, NULL);
    return read_buffer(st, file, "", text, len);
}
