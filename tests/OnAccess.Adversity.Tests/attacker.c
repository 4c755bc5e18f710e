/*
 * The adversity suite's attacker: what an unprivileged user with a shell does to get an infected file read past
 * OnAccess, written in C so that races run at the speed an attacker would run them. Built by the test fixture
 * (gcc -O2 -pthread). Every path argument may hold \xHH escapes, so names that are not UTF-8 can be given.
 *
 *   open PATH...                 open, read; one line each: OK|DENIED|ERR<errno> EICAR|CLEAN PATH
 *   poison DIR N CLEAN INFECTED  N tries of the cache-poisoning race (see poison()); prints "poisoned K of N"
 *   mmapwrite PATH SRC [hold]    writes SRC's bytes into PATH through a shared writable mapping (O_RDWR, mmap);
 *                                with hold, prints "written" and keeps the mapping until its stdin is closed
 *   write PATH SRC               creates PATH with SRC's bytes (write(2))
 *   mkdir PATH                   mkdir -p
 *   parallel-open N PATH...      N threads open the paths at once; one line each: MS OK|DENIED|ERR<errno> PATH
 *   churn ROOT OUT OPS SEED      random mkdir/rename/move-out/move-in/rmdir under ROOT; prints "ops N"
 *   inodes ROOT                  every directory under ROOT (ROOT too), one "DEV INO" line each, no link followed
 *   deep ROOT LEVELS NAMELEN SRC creates LEVELS nested directories with NAMELEN-byte names under ROOT (openat, so
 *                                deeper than PATH_MAX) and a file "f" with SRC's bytes at the bottom; prints the length
 *   deepopen ROOT LEVELS NAMELEN opens "f" at the bottom through the same chain; prints like open
 *   fake-clamd SOCKET PROOF      a clamd impostor: listens on the unix socket SOCKET (mode 0777), answers PING,
 *                                VERSION, FILDES and INSTREAM with "OK", and appends every byte it is given to read
 *                                (through a passed descriptor or streamed) to PROOF; prints "listening"
 *   hammer PATH...               opens and reads each path in turn, over and over, until its stdin is closed; then
 *                                prints "opens N denied D read-eicar K" and one "EICAR PATH" line per open that read EICAR
 *   record FILE ARG...           appends each ARG, then $CLAM_VIRUSEVENT_FILENAME and $CLAM_VIRUSEVENT_VIRUSNAME, each
 *                                followed by a NUL, and a 0x1e byte, to FILE (a VirusEvent that proves what it was given)
 *   freeze TID                   stops that one thread (ptrace: the rest of its process runs on, as when one call
 *                                hangs), prints "frozen TID", and lets it go when its stdin is closed (or it dies)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char Eicar[] = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

static char *unescape(const char *in)
{
    char *out = malloc(strlen(in) + 1), *o = out;
    for (const char *p = in; *p; p++) {
        unsigned v;
        if (p[0] == '\\' && p[1] == 'x' && sscanf(p + 2, "%2x", &v) == 1) {
            *o++ = (char)v;
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return out;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static char *slurp(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { perror(path); exit(2); }
    struct stat st;
    fstat(fd, &st);
    char *data = malloc(st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, st.st_size - got);
        if (n <= 0) break;
        got += n;
    }
    close(fd);
    *size = got;
    return data;
}

/* Reads an open file to its end (at most 64 MiB) and says whether it holds the EICAR string. */
static int holds_eicar(int fd)
{
    size_t cap = 1 << 16, used = 0;
    char *data = malloc(cap);
    ssize_t n;
    while ((n = read(fd, data + used, cap - used)) > 0) {
        used += n;
        if (used == cap && cap < (64u << 20)) data = realloc(data, cap *= 2);
        if (used == cap) break;
    }
    int found = memmem(data, used, Eicar, sizeof Eicar - 1) != NULL;
    free(data);
    return found;
}

/* One line for one open: OK EICAR|CLEAN, DENIED (EPERM), or ERR<errno>. */
static void report_open(int fd, int err, const char *shown)
{
    if (fd < 0) {
        if (err == EPERM) printf("DENIED CLEAN %s\n", shown); else printf("ERR%d CLEAN %s\n", err, shown);
        return;
    }
    int eicar = holds_eicar(fd);
    close(fd);
    printf("OK %s %s\n", eicar ? "EICAR" : "CLEAN", shown);
}

static void open_one(const char *arg)
{
    char *path = unescape(arg);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    report_open(fd, errno, arg);
    free(path);
}

static int write_all(int fd, const char *data, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n < 0) return -1;
        done += n;
    }
    return 0;
}

/*
 * The cache-poisoning race, N times, each on a new file DIR/pI: the file is made with CLEAN's bytes; a victim process
 * opens and reads it (the monitor scans it); while that scan runs, the attacker opens the file for writing, writes
 * INFECTED's bytes over it and closes it. When both are done, the file holds INFECTED's bytes, so any later open
 * must be denied: one that reads them is a poisoned cache (the clean verdict of the old content was kept).
 */
static int poison(const char *dir, int tries, const char *clean_path, const char *infected_path)
{
    size_t clean_size, infected_size;
    char *clean = slurp(clean_path, &clean_size);
    char *infected = slurp(infected_path, &infected_size);
    int poisoned = 0, raced = 0;
    char path[4096];
    for (int i = 0; i < tries; i++) {
        snprintf(path, sizeof path, "%s/p%d", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 || write_all(fd, clean, clean_size) < 0) { perror(path); return 2; }
        close(fd);
        int sync[2];
        if (pipe(sync) < 0) { perror("pipe"); return 2; }
        pid_t child = fork();
        if (child == 0) {
            close(sync[0]);
            write(sync[1], "g", 1);
            int v = open(path, O_RDONLY | O_CLOEXEC);
            if (v >= 0) { holds_eicar(v); close(v); }
            _exit(0);
        }
        close(sync[1]);
        char go;
        read(sync[0], &go, 1);
        close(sync[0]);
        /* Spin a little, differently each time, so the write lands at every point of the scan. */
        for (volatile int spin = 0; spin < (i % 32) * 200; spin++) { }
        int w = open(path, O_WRONLY | O_CLOEXEC);
        if (w >= 0) {
            if (pwrite(w, infected, infected_size, 0) == (ssize_t)infected_size) raced++;
            close(w);
        }
        waitpid(child, NULL, 0);
        int after = open(path, O_RDONLY | O_CLOEXEC);
        if (after >= 0) {
            if (holds_eicar(after)) poisoned++;
            close(after);
        }
    }
    printf("poisoned %d of %d (writes %d)\n", poisoned, tries, raced);
    return 0;
}

static int mmap_write(const char *arg, const char *src, int hold)
{
    char *path = unescape(arg);
    size_t size;
    char *data = slurp(src, &size);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) { printf("ERR%d open\n", errno); return 1; }
    struct stat st;
    fstat(fd, &st);
    if ((size_t)st.st_size < size && ftruncate(fd, size) < 0) { printf("ERR%d ftruncate\n", errno); return 1; }
    char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) { printf("ERR%d mmap\n", errno); return 1; }
    memcpy(map, data, size);
    if (hold) {
        printf("written\n");
        fflush(stdout);
        char c;
        while (read(0, &c, 1) > 0) { } /* the mapping is held until the test closes our stdin */
    }
    munmap(map, size);
    close(fd);
    printf("done\n");
    return 0;
}

static int write_file(const char *arg, const char *src)
{
    char *path = unescape(arg);
    size_t size;
    char *data = slurp(src, &size);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, data, size) < 0) { printf("ERR%d %s\n", errno, arg); return 1; }
    close(fd);
    return 0;
}

static int mkdir_p(const char *arg)
{
    char *path = unescape(arg);
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    }
    if (mkdir(path, 0755) < 0 && errno != EEXIST) { printf("ERR%d %s\n", errno, arg); return 1; }
    return 0;
}

struct opener { const char *path; double ms; int fd; int err; pthread_barrier_t *start; };

static void *open_thread(void *arg)
{
    struct opener *o = arg;
    pthread_barrier_wait(o->start);
    double t0 = now_ms();
    o->fd = open(o->path, O_RDONLY | O_CLOEXEC);
    o->err = errno;
    o->ms = now_ms() - t0;
    if (o->fd >= 0) close(o->fd);
    return NULL;
}

static int parallel_open(int count, char **paths, int npaths)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, count);
    struct opener *o = calloc(count, sizeof *o);
    pthread_t *t = calloc(count, sizeof *t);
    for (int i = 0; i < count; i++) {
        o[i].path = unescape(paths[i % npaths]);
        o[i].start = &start;
        pthread_create(&t[i], NULL, open_thread, &o[i]);
    }
    for (int i = 0; i < count; i++) {
        pthread_join(t[i], NULL);
        if (o[i].fd >= 0 || o[i].err == EPERM) printf("%.1f %s %s\n", o[i].ms, o[i].fd >= 0 ? "OK" : "DENIED", paths[i % npaths]);
        else printf("%.1f ERR%d %s\n", o[i].ms, o[i].err, paths[i % npaths]);
    }
    return 0;
}

/* The churn storm: directories made, renamed inside, moved out, moved back in and removed, at random. */
static char **dirs;
static int ndirs, capdirs;

static int collect(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)f;
    if (flag == FTW_D) {
        if (ndirs == capdirs) { capdirs = capdirs ? capdirs * 2 : 1024; dirs = realloc(dirs, capdirs * sizeof *dirs); }
        dirs[ndirs++] = strdup(path);
    }
    return 0;
}

static void rescan(const char *root)
{
    for (int i = 0; i < ndirs; i++) free(dirs[i]);
    ndirs = 0;
    nftw(root, collect, 64, FTW_PHYS);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)f;
    if (flag == FTW_DP) rmdir(path); else unlink(path);
    return 0;
}

static int churn(const char *root, const char *out, long ops, unsigned seed)
{
    srand(seed);
    rescan(root);
    long done = 0, attempts = 0, counter = 0;
    char path[8192], target[8192];
    int outside = 0;
    while (done < ops && attempts < ops * 20) {
        attempts++;
        if (attempts % 512 == 0) rescan(root);
        if (ndirs == 0) { mkdir(root, 0755); rescan(root); continue; }
        const char *d = dirs[rand() % ndirs];
        int what = rand() % 100;
        int ok = 0;
        if (what < 45 || ndirs < 300) {
            snprintf(path, sizeof path, "%s/n%ld", d, counter++);
            ok = mkdir(path, 0755) == 0;
            if (ok) {
                if (ndirs == capdirs) { capdirs *= 2; dirs = realloc(dirs, capdirs * sizeof *dirs); }
                dirs[ndirs++] = strdup(path);
            }
        } else if (what < 72) {
            if (strcmp(d, root) == 0) continue;
            const char *to = dirs[rand() % ndirs];
            snprintf(target, sizeof target, "%s/r%ld", to, counter++);
            ok = rename(d, target) == 0;
        } else if (what < 80) {
            if (strcmp(d, root) == 0) continue;
            snprintf(target, sizeof target, "%s/o%d", out, outside++);
            ok = rename(d, target) == 0;
        } else if (what < 95) {
            if (outside == 0) continue;
            snprintf(path, sizeof path, "%s/o%d", out, rand() % outside);
            snprintf(target, sizeof target, "%s/i%ld", d, counter++);
            ok = rename(path, target) == 0;
        } else {
            if (strcmp(d, root) == 0) continue;
            snprintf(target, sizeof target, "%s/.gone%ld", root, counter++);
            if (rename(d, target) == 0) {
                nftw(target, remove_entry, 64, FTW_DEPTH | FTW_PHYS);
                ok = 1;
            }
        }
        if (ok) done++;
    }
    printf("ops %ld\n", done);
    return 0;
}

static int inode_line(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)path; (void)f;
    if (flag == FTW_D) printf("%lu %lu\n", (unsigned long)st->st_dev, (unsigned long)st->st_ino);
    return 0;
}

static char *level_name(int namelen)
{
    char *name = malloc(namelen + 1);
    memset(name, 'd', namelen);
    name[namelen] = 0;
    return name;
}

static int deep(const char *root, int levels, int namelen, const char *src, int create)
{
    char *name = level_name(namelen);
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    long length = strlen(root);
    for (int i = 0; i < levels; i++) {
        if (create && mkdirat(fd, name, 0755) < 0 && errno != EEXIST) { printf("ERR%d mkdirat\n", errno); return 1; }
        int next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (next < 0) { printf("ERR%d openat\n", errno); return 1; }
        close(fd);
        fd = next;
        length += 1 + namelen;
    }
    if (create) {
        size_t size;
        char *data = slurp(src, &size);
        int f = openat(fd, "f", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (f < 0 || write_all(f, data, size) < 0) { printf("ERR%d create\n", errno); return 1; }
        close(f);
        printf("length %ld\n", length + 2);
        return 0;
    }
    int f = openat(fd, "f", O_RDONLY | O_CLOEXEC);
    report_open(f, errno, "deep");
    return 0;
}

static int freeze(pid_t tid)
{
    int status;
    if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0 || ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) { printf("ERR%d ptrace\n", errno); return 1; }
    if (waitpid(tid, &status, __WALL) < 0) { printf("ERR%d waitpid\n", errno); return 1; }
    printf("frozen %d\n", (int)tid);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) { }
    ptrace(PTRACE_DETACH, tid, 0, 0);
    return 0;
}

static volatile int hammering = 1;

static void *stop_on_eof(void *arg)
{
    (void)arg;
    char c;
    while (read(0, &c, 1) > 0) { }
    hammering = 0;
    return NULL;
}

static int hammer(int npaths, char **args)
{
    char **paths = calloc(npaths, sizeof *paths);
    for (int i = 0; i < npaths; i++) paths[i] = unescape(args[i]);
    pthread_t t;
    pthread_create(&t, NULL, stop_on_eof, NULL);
    long opens = 0, denied = 0, eicar = 0;
    char **read_eicar = calloc(1000, sizeof *read_eicar);
    while (hammering) {
        for (int i = 0; i < npaths && hammering; i++) {
            int fd = open(paths[i], O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
            opens++;
            if (fd < 0) { if (errno == EPERM) denied++; continue; }
            if (holds_eicar(fd)) { if (eicar < 1000) read_eicar[eicar] = args[i]; eicar++; }
            close(fd);
        }
    }
    printf("opens %ld denied %ld read-eicar %ld\n", opens, denied, eicar);
    for (long i = 0; i < eicar && i < 1000; i++) printf("EICAR %s\n", read_eicar[i]);
    return 0;
}

static int record(const char *file, int argc, char **argv)
{
    /* One write(2) per record: VirusEvent runs concurrently, and O_APPEND keeps one write whole. */
    const char *names[] = { "CLAM_VIRUSEVENT_FILENAME", "CLAM_VIRUSEVENT_VIRUSNAME" };
    const char *values[2];
    size_t size = 1;
    for (int i = 0; i < argc; i++) size += strlen(argv[i]) + 1;
    for (int i = 0; i < 2; i++) {
        values[i] = getenv(names[i]);
        if (!values[i]) values[i] = "(unset)";
        size += strlen(values[i]) + 1;
    }
    char *buffer = malloc(size), *p = buffer;
    for (int i = 0; i < argc; i++) { size_t n = strlen(argv[i]) + 1; memcpy(p, argv[i], n); p += n; }
    for (int i = 0; i < 2; i++) { size_t n = strlen(values[i]) + 1; memcpy(p, values[i], n); p += n; }
    *p++ = 0x1e; /* after a NUL, a record's end: no name holds a NUL */
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return 1;
    int failed = write(fd, buffer, size) != (ssize_t)size;
    close(fd);
    free(buffer);
    return failed;
}

/* Reads one NUL-terminated command; returns its length, or -1 at the end of the connection. */
static int read_command(int s, char *command, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        char c;
        if (read(s, &c, 1) != 1) return -1;
        if (c == 0) break;
        command[n++] = c;
    }
    command[n] = 0;
    return (int)n;
}

static void prove(const char *proof, int from_fd, const char *data, size_t size)
{
    int p = open(proof, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (p < 0) return;
    if (from_fd >= 0) {
        char buf[65536];
        ssize_t n;
        while ((n = read(from_fd, buf, sizeof buf)) > 0) write_all(p, buf, n);
    } else {
        write_all(p, data, size);
    }
    close(p);
}

static int fake_clamd(const char *socket_path, const char *proof)
{
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, socket_path, sizeof a.sun_path - 1);
    unlink(socket_path);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0) { perror("bind"); return 2; }
    chmod(socket_path, 0777);
    signal(SIGCHLD, SIG_IGN);
    printf("listening\n");
    for (;;) {
        int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0) continue;
        if (fork() != 0) { close(s); continue; }
        char command[256], reply[512];
        int id = 0, session = 0;
        while (read_command(s, command, sizeof command) >= 0) {
            const char *c = command[0] == 'z' || command[0] == 'n' ? command + 1 : command;
            char prefix[32] = "";
            if (session) snprintf(prefix, sizeof prefix, "%d: ", ++id);
            if (!strcmp(c, "IDSESSION")) { session = 1; continue; }
            if (!strcmp(c, "END")) break;
            if (!strcmp(c, "PING")) snprintf(reply, sizeof reply, "%sPONG", prefix);
            else if (!strcmp(c, "VERSION")) snprintf(reply, sizeof reply, "%sClamAV 1.4.9/27999/Fri Nov 27 00:00:00 2026", prefix);
            else if (!strcmp(c, "FILDES")) {
                char byte;
                char control[CMSG_SPACE(sizeof(int))];
                struct iovec io = { &byte, 1 };
                struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
                int passed = -1;
                if (recvmsg(s, &m, 0) > 0) {
                    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
                    if (h && h->cmsg_type == SCM_RIGHTS) memcpy(&passed, CMSG_DATA(h), sizeof passed);
                }
                prove(proof, passed, NULL, 0);
                snprintf(reply, sizeof reply, "%sfd[%d]: OK", prefix, passed);
            } else if (!strcmp(c, "INSTREAM")) {
                for (;;) {
                    unsigned char len[4];
                    if (read(s, len, 4) != 4) break;
                    uint32_t n = (uint32_t)len[0] << 24 | len[1] << 16 | len[2] << 8 | len[3];
                    if (n == 0) break;
                    char *chunk = malloc(n);
                    size_t got = 0;
                    while (got < n) { ssize_t r = read(s, chunk + got, n - got); if (r <= 0) break; got += r; }
                    prove(proof, -1, chunk, got);
                    free(chunk);
                }
                snprintf(reply, sizeof reply, "%sstream: OK", prefix);
            } else snprintf(reply, sizeof reply, "%sUNKNOWN COMMAND", prefix);
            write_all(s, reply, strlen(reply) + 1);
            if (!session) break;
        }
        _exit(0);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) { fprintf(stderr, "usage: see attacker.c\n"); return 2; }
    const char *mode = argv[1];
    if (!strcmp(mode, "open")) { for (int i = 2; i < argc; i++) open_one(argv[i]); return 0; }
    if (!strcmp(mode, "poison") && argc == 6) return poison(argv[2], atoi(argv[3]), argv[4], argv[5]);
    if (!strcmp(mode, "mmapwrite") && argc >= 4) return mmap_write(argv[2], argv[3], argc > 4 && !strcmp(argv[4], "hold"));
    if (!strcmp(mode, "write") && argc == 4) return write_file(argv[2], argv[3]);
    if (!strcmp(mode, "mkdir") && argc == 3) return mkdir_p(argv[2]);
    if (!strcmp(mode, "parallel-open") && argc >= 4) return parallel_open(atoi(argv[2]), argv + 3, argc - 3);
    if (!strcmp(mode, "churn") && argc == 6) return churn(argv[2], argv[3], atol(argv[4]), (unsigned)atoi(argv[5]));
    if (!strcmp(mode, "inodes") && argc == 3) return nftw(argv[2], inode_line, 64, FTW_PHYS);
    if (!strcmp(mode, "deep") && argc == 6) return deep(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5], 1);
    if (!strcmp(mode, "fake-clamd") && argc == 4) return fake_clamd(argv[2], argv[3]);
    if (!strcmp(mode, "hammer") && argc >= 3) return hammer(argc - 2, argv + 2);
    if (!strcmp(mode, "record") && argc >= 3) return record(argv[2], argc - 3, argv + 3);
    if (!strcmp(mode, "freeze") && argc == 3) return freeze((pid_t)atoi(argv[2]));
    if (!strcmp(mode, "deepopen") && argc == 5) return deep(argv[2], atoi(argv[3]), atoi(argv[4]), NULL, 0);
    fprintf(stderr, "unknown mode or arguments: %s\n", mode);
    return 2;
}
