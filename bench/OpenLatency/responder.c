/* The practical limit of a user-space listener: one thread, read -> answer allow, nothing else. With --ignore it
 * also puts a kernel ignore mark on every file it allows (as a verdict cache does), so later opens of it never
 * reach user space: the practical limit of a cached open under a directory mark. With --lease it also keeps each
 * such file open with a read lease on it, as OnAccess's kernel cache does (the lease is what tells a cache that a
 * writer opened the file, which no fanotify event does): the practical limit of a cached open that can be trusted.
 * With --filesystem it marks the whole filesystem that holds DIR instead, and puts an ignore mark for its children on
 * the directory of every file it allows (as --tree-marking filesystem does outside the tree): the practical limit of an
 * open outside the include path under one filesystem mark.
 * Usage: responder DIR [--ignore [--lease] | --filesystem]   (prints "ready" once the mark is in place; SIGTERM ends it)
 *        responder DIR DIR...   (allow-all, each DIR marked: for cases whose files sit in several directories) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int filesystem = argc == 3 && strcmp(argv[2], "--filesystem") == 0;
    int ignore = argc >= 3 && strcmp(argv[2], "--ignore") == 0;
    int lease = argc == 4 && ignore && strcmp(argv[3], "--lease") == 0;
    int dirs = 1;
    while (dirs < argc && strncmp(argv[dirs], "--", 2) != 0) dirs++;
    dirs--; /* the directories named before any flag */
    if (dirs < 1 || (dirs > 1 && argc != dirs + 1) || (dirs == 1 && (argc > 4 || (argc >= 3 && !ignore && !filesystem) || (argc == 4 && !lease)))) { fprintf(stderr, "usage: responder DIR [--ignore [--lease] | --filesystem] | responder DIR DIR...\n"); return 2; }
    signal(SIGIO, SIG_IGN); /* no writer comes in the bench; a break would only time out */
    int fd = fanotify_init(FAN_CLOEXEC | FAN_CLASS_CONTENT, O_RDONLY);
    if (fd < 0) { perror("fanotify_init"); return 1; }
    for (int d = 1; d <= dirs; d++)
        if (fanotify_mark(fd, FAN_MARK_ADD | (filesystem ? FAN_MARK_FILESYSTEM : 0), FAN_OPEN_PERM | (filesystem ? 0 : FAN_EVENT_ON_CHILD), AT_FDCWD, argv[d]) < 0) { perror("fanotify_mark"); return 1; }
    printf("ready\n");
    fflush(stdout);
    char buf[65536] __attribute__((aligned(8)));
    for (;;) {
        ssize_t len = read(fd, buf, sizeof buf);
        if (len <= 0) continue;
        struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
        for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
            if (m->fd >= 0) {
                int keep = lease && fcntl(m->fd, F_SETLEASE, F_RDLCK) == 0;
                if (ignore && (keep || !lease)) fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, FAN_OPEN_PERM, m->fd, NULL);
                if (filesystem) {
                    char link[64], path[4096];
                    snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
                    ssize_t n = readlink(link, path, sizeof path - 1);
                    if (n > 0) {
                        path[n] = 0;
                        fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_EVICTABLE, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD, AT_FDCWD, dirname(path));
                    }
                }
                struct fanotify_response r = { .fd = m->fd, .response = FAN_ALLOW };
                if (m->mask & FAN_OPEN_PERM) write(fd, &r, sizeof r);
                if (!keep) close(m->fd);
            }
        }
    }
}
