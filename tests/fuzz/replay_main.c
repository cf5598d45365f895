/*
 * replay_main.c - a main() for any libFuzzer target, so that `make check` can
 * replay its corpus without libFuzzer (the Varnish way). Linked with an ASan
 * build, a crash on any corpus file fails the run.
 *
 *   build/asan/tests/fuzz/<target>_replay tests/fuzz/corpus/<target>
 *
 * Prints one TAP line: "ok 1 - <target> replayed N files", or "not ok 1 - ..."
 * when the directory is missing or holds no file.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *
target_name(const char *argv0)
{
    static char name[256];
    const char *b = strrchr(argv0, '/');
    size_t n;

    b = b ? b + 1 : argv0;
    n = strlen(b);
    if (n > 7 && strcmp(b + n - 7, "_replay") == 0)
        n -= 7;
    if (n >= sizeof(name))
        n = sizeof(name) - 1;
    memcpy(name, b, n);
    name[n] = '\0';
    return name;
}

/* Read a whole file into a malloc'd buffer of exactly its size (so ASan sees overreads). */
static uint8_t *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    struct stat st;

    if (f == NULL)
        return NULL;
    if (fstat(fileno(f), &st) == -1 || st.st_size < 0)
        goto out;
    *len = (size_t)st.st_size;
    buf = malloc(*len ? *len : 1);
    if (buf == NULL || fread(buf, 1, *len, f) != *len) {
        free(buf);
        buf = NULL;
    }
out:
    fclose(f);
    return buf;
}

int
main(int argc, char **argv)
{
    const char *name = target_name(argv[0]);
    struct dirent **ents = NULL;
    int n, files = 0, failed = 0;

    printf("1..1\n");
    if (argc != 2) {
        printf("not ok 1 - %s: usage: %s CORPUS_DIR\n", name, argv[0]);
        return 1;
    }
    n = scandir(argv[1], &ents, NULL, alphasort);
    if (n == -1) {
        printf("not ok 1 - %s: cannot read corpus directory %s\n", name, argv[1]);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        size_t len = 0;

        snprintf(path, sizeof(path), "%s/%s", argv[1], ents[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            uint8_t *data = read_file(path, &len);
            if (data == NULL) {
                printf("# cannot read %s\n", path);
                failed = 1;
            } else {
                fflush(stdout);
                LLVMFuzzerTestOneInput(data, len);
                free(data);
                files++;
            }
        }
        free(ents[i]);
    }
    free(ents);
    if (files == 0 || failed) {
        printf("not ok 1 - %s replayed %d files%s\n", name, files,
               files == 0 ? " (corpus is empty)" : " (unreadable files)");
        return 1;
    }
    printf("ok 1 - %s replayed %d files\n", name, files);
    return 0;
}
