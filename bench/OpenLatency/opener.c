/* Opens, reads 4 KiB of and closes N files, M rounds; prints per-open nanoseconds (median, p99) for the rounds
 * from FIRST_ROUND on. With TWIN, every open of DIR/fI is followed by one of TWIN/fI (an identical file on a
 * filesystem nobody watches), so both are measured at the same moments of this noisy machine; it then prints
 * four numbers: DIR's median and p99, then TWIN's.
 * Usage: opener DIR N M FIRST_ROUND [TWIN] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static long long open_read_close(const char *dir, int i) {
    char path[4096], buf[4096];
    snprintf(path, sizeof path, "%s/f%d", dir, i);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); exit(1); }
    if (read(fd, buf, sizeof buf) < 0) { perror("read"); exit(1); }
    close(fd);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
}

static void report(long long *samples, int count, const char *end) {
    qsort(samples, count, sizeof(long long), cmp);
    printf("%lld %lld%s", samples[count / 2], samples[(count * 99) / 100], end);
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) { fprintf(stderr, "usage: opener DIR N M FIRST_ROUND [TWIN]\n"); return 2; }
    const char *dir = argv[1], *twin = argc == 6 ? argv[5] : NULL;
    int n = atoi(argv[2]), m = atoi(argv[3]), first = atoi(argv[4]);
    long long *samples = calloc((size_t)n * m, sizeof(long long));
    long long *twins = calloc((size_t)n * m, sizeof(long long));
    int count = 0;
    for (int round = 0; round < m; round++) {
        for (int i = 0; i < n; i++) {
            long long t = open_read_close(dir, i);
            long long u = twin ? open_read_close(twin, i) : 0;
            if (round >= first) {
                samples[count] = t;
                twins[count] = u;
                count++;
            }
        }
    }
    if (twin) {
        report(samples, count, " ");
        report(twins, count, "\n");
    } else {
        report(samples, count, "\n");
    }
    return 0;
}
