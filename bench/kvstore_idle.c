/*
 * kvstore_idle — the idle-connection client of bench/kvstore: opens N
 * connections to a Redis-protocol server, sends one PING on each and reads
 * its +PONG (so the server has really accepted and set up every client),
 * says so on standard output, and holds them all open until a line (or end
 * of file) on standard input; then it closes them and exits.
 *
 *   kvstore_idle HOST PORT N
 *
 * Standard output, one line each:
 *   ready n=<N> seconds=<time to open and serve all N>   (all answered)
 *   failed n=<opened> reason=<why> errno=<e>              (then exit 1)
 *
 * bench/kvstore reads the server's VmRSS (/proc/PID/status) before it
 * starts this and after the ready line: the growth over N is the server's
 * resident memory per idle connection. Connections go in batches of 256
 * (connect each, PING each, then read each PONG), blocking sockets with a
 * 10 s receive timeout. RLIMIT_NOFILE is raised to N + 64 when the hard
 * limit allows (the caller raises the server's).
 *
 * Plain POSIX: no troupe (bench/CMakeLists.txt builds every .c file of bench/,
 * so this is built as build-release/bench/kvstore_idle too; bench/kvstore
 * compiles its own copy with `cc -O2`).
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256

static const char ping[] = "*1\r\n$4\r\nPING\r\n";
static const char pong[] = "+PONG\r\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(unsigned opened, const char *what, int err)
{
    printf("failed n=%u reason=%s errno=%d\n", opened, what, err);
    fflush(stdout);
    fprintf(stderr, "kvstore_idle: connection %u: %s%s%s\n", opened, what,
            err ? ": " : "", err ? strerror(err) : "");
    return 1;
}

/* Reads exactly the PONG reply, or says why not (errno, or 0: a wrong reply). */
static int read_pong(int fd)
{
    char buf[sizeof pong - 1];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t r = read(fd, buf + got, sizeof buf - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = ECONNRESET;
            return -1;
        }
        got += (size_t)r;
    }
    if (memcmp(buf, pong, sizeof buf) != 0) {
        errno = 0;
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s HOST PORT N\n", argv[0]);
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET};
    long port = strtol(argv[2], NULL, 10);
    long nl = strtol(argv[3], NULL, 10);
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || port <= 0 || port > 65535 ||
        nl < 0 || nl > 1000000) {
        fprintf(stderr, "%s: bad HOST, PORT or N\n", argv[0]);
        return 2;
    }
    sa.sin_port = htons((unsigned short)port);
    unsigned n = (unsigned)nl;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = (rlim_t)n + 64 < rl.rlim_max ? (rlim_t)n + 64 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    int *fds = calloc(n ? n : 1, sizeof *fds);
    if (!fds)
        return fail(0, "out_of_memory", 0);
    struct timeval tmo = {.tv_sec = 10};
    double t0 = now_s();
    unsigned open = 0;
    while (open < n) {
        unsigned b = n - open < BATCH ? n - open : BATCH;
        for (unsigned i = 0; i < b; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd < 0)
                return fail(open + i, "socket", errno);
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof tmo);
            if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
                return fail(open + i, "connect", errno);
            fds[open + i] = fd;
            if (write(fds[open + i], ping, sizeof ping - 1) != (ssize_t)(sizeof ping - 1))
                return fail(open + i, "write", errno);
        }
        for (unsigned i = 0; i < b; i++)
            if (read_pong(fds[open + i]) != 0)
                return fail(open + i, errno ? "read" : "not_pong", errno);
        open += b;
    }
    printf("ready n=%u seconds=%.6f\n", n, now_s() - t0);
    fflush(stdout);

    char line[64];
    (void)!fgets(line, sizeof line, stdin); /* a line or end of file */
    for (unsigned i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    return 0;
}
