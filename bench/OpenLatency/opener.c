/* Opens, reads 4 KiB of and closes N files, M rounds; prints per-open nanoseconds (median, p99) for the rounds
 * from FIRST_ROUND on. Usage: opener DIR N M FIRST_ROUND */
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

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: opener DIR N M FIRST_ROUND\n"); return 2; }
    const char *dir = argv[1];
    int n = atoi(argv[2]), m = atoi(argv[3]), first = atoi(argv[4]);
    long long *samples = calloc((size_t)n * m, sizeof(long long));
    char path[4096], buf[4096];
    int count = 0;
    for (int round = 0; round < m; round++) {
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/f%d", dir, i);
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            int fd = open(path, O_RDONLY);
            if (fd < 0) { perror(path); return 1; }
            if (read(fd, buf, sizeof buf) < 0) { perror("read"); return 1; }
            close(fd);
            clock_gettime(CLOCK_MONOTONIC, &b);
            if (round >= first)
                samples[count++] = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
        }
    }
    qsort(samples, count, sizeof(long long), cmp);
    printf("%lld %lld\n", samples[count / 2], samples[(count * 99) / 100]);
    return 0;
}
