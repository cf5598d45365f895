/*
 * conf_int.h - private to src/conf: tokens, the syntax tree and the load state.
 *
 * Loading runs in two passes. lex.c turns files into a tree of directives
 * (struct cnode), expanding `include` in place and reporting syntax errors.
 * parse.c walks the tree per context, checks every directive and builds the
 * runtime structs of conf.h. Both report through conf_err into one list.
 */
#ifndef GH_CONF_CONF_INT_H
#define GH_CONF_CONF_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "core/arena.h"

#define GH_CONF_MAX_INCLUDE_DEPTH 16
#define GH_CONF_MAX_BLOCK_DEPTH 16
#define GH_CONF_MAX_FILE_SIZE (16u * 1024 * 1024)

struct conf_pos {
    const char *file;
    uint32_t line;
    uint32_t col; /* 1-based, in bytes */
};

enum tok_type { TOK_EOF = 0, TOK_WORD, TOK_STRING, TOK_SEMI, TOK_LBRACE, TOK_RBRACE };

struct conf_tok {
    enum tok_type type;
    const char *text; /* NUL-terminated, escapes resolved (arena) */
    uint32_t len;
    struct conf_pos pos; /* first byte */
    uint32_t end_col;    /* column just after the last byte (same line) */
    bool unterminated;   /* a string without its closing quote (reported): it ran to the end
                          * of the line, and so does its directive */
    char quote;          /* a string's quote: '"' or '\'' */
    /* a string whose escapes made text shorter than what is written: the bytes between the
     * quotes as written (arena), so a position inside text can be found on the line */
    const char *raw;
    uint32_t raw_len;
    /* log_format's strings compiled as one: the tokens joined into text, in order */
    const struct conf_tok *joined;
    uint32_t n_joined;
};

/* One directive: `name args... ;` or `name args... { children }`. */
struct cnode {
    struct conf_tok name;
    struct conf_tok *args;
    uint32_t n_args;
    bool has_block;
    struct cnode *children;
    struct cnode *next;
    const char *dir; /* directory of its file, with a trailing '/' ("" = current directory) */
};

struct conf_incl {
    dev_t dev;
    ino_t ino;
};

/* One file read (the top one, or an include), in the order they were read. Diagnostics are
 * sorted with it: an included file's problems stand where its `include` is. */
struct conf_read {
    const char *file;   /* the name the lexer gives this read's tokens (compared as a pointer) */
    int32_t parent;     /* the read that included it, or -1 */
    uint32_t line, col; /* where the parent names it */
};

/* Where one diagnostic belongs in file order (see conf_diag_sort in runtime.c). */
struct conf_diag_key {
    int32_t read; /* -1: a file not read (it could not be opened) */
    uint32_t line, col;
    bool last; /* "too many errors" closes the list */
};

struct conf_state {
    struct gh_arena *arena;
    struct gh_conf_diag *diag; /* may be NULL */
    uint32_t n_errors;
    bool stop; /* too many errors: unwind */
    unsigned flags;
    /* files being read, outermost first (include cycle detection) */
    struct conf_incl incl[GH_CONF_MAX_INCLUDE_DEPTH + 2];
    uint32_t n_incl;
    struct conf_read *reads; /* every file read, in order (arena) */
    uint32_t n_reads, cap_reads;
    struct conf_diag_key *keys; /* one per diagnostic (heap; only when diag is not NULL) */
    uint32_t cap_keys;
    /* `geo $NAME` maps defined so far (their names, arena): templates may use $NAME */
    const char **geo_names;
    uint32_t n_geo;
};

/* Record "FILE:LINE:COL: message"; sets st->stop after GH_CONF_MAX_ERRORS. */
void conf_err(struct conf_state *st, const struct conf_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A warning: recorded like an error ("FILE:LINE:COL: warning: message") but the config loads. */
void conf_warn(struct conf_state *st, const struct conf_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Note that the lexer starts reading file (the pointer its tokens will carry); from is where
 * an include names it (NULL for the top file). */
void conf_note_read(struct conf_state *st, const char *file, const struct conf_pos *from);

/* Put the diagnostics in file order (files as read, includes in place; then line, column),
 * keeping the order in which they were found for equal positions. */
void conf_diag_sort(struct conf_state *st);

/* A token's text made safe to quote in a message: truncated, controls escaped (arena). */
const char *conf_show(struct conf_state *st, const char *s, size_t len);

/* lex.c: where t->text[off] was written (past a string's quote, escapes counted as written,
 * in the token it came from when t joins several). */
struct conf_pos conf_tok_pos(const struct conf_tok *t, size_t off);

/* lex.c: read a file or a string into a directive list. NULL when empty or on error. */
struct cnode *conf_read_file(struct conf_state *st, const char *path);
struct cnode *conf_read_string(struct conf_state *st, const char *name, const char *text,
                               size_t len);

/* tmpl.c: compile the text of t as a template for context ctx (GH_TC_*; what names the
 * directive in messages). Returns it (arena), or NULL after reporting the problem. */
const struct gh_tmpl *conf_tmpl(struct conf_state *st, const struct conf_tok *t, unsigned ctx,
                                const char *what);

/* rewrite.c: compile t as a PCRE2 regex (JIT when it can; freed with the arena). NULL after
 * reporting (what names the directive). */
struct pcre2_real_code_8 *conf_regex(struct conf_state *st, const struct conf_tok *t, bool caseless,
                                     const char *what);
/* tmpl.c: is name[0..len) a built-in variable (or a prefix one's prefix)? */
bool conf_var_exists(const char *name, size_t len);

/* rewrite.c: compile `rewrite REGEX REPLACEMENT [flag]` (the arguments of n). NULL after
 * reporting. */
const struct gh_rewrite *conf_rewrite(struct conf_state *st, const struct cnode *n);

/* parse.c: true when name is a directive in any context (for the missing-';' check). */
bool conf_is_directive(const char *name, size_t len);

/* parse.c: check the tree and build the config. NULL when any error was reported. */
struct gh_config *conf_build(struct conf_state *st, const char *source, struct cnode *root);

/* Levenshtein distance of a and b, or a large number when either is long. */
uint32_t conf_distance(const char *a, size_t alen, const char *b, size_t blen);

#endif
