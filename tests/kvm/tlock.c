/* tlock: take a POSIX (fcntl) or BSD (flock) lock on a file in the guest, report it, optionally hold it
 * while a command runs.  Built statically for the kvm guest (tests/kvm/guest.py).
 *
 *   tlock FILE MODE START LEN [CMD ARG...]
 *     MODE: r  fcntl F_RDLCK, non-blocking      R  the same, blocking (F_SETLKW)
 *           w  fcntl F_WRLCK, non-blocking      W  the same, blocking
 *           f  flock LOCK_EX|LOCK_NB            s  flock LOCK_SH|LOCK_NB
 *     LEN 0 = to the end of the file (fcntl).  START/LEN are ignored for flock.
 *   tlock FILE t START LEN    F_GETLK for a write lock: prints "free" or "held pid=P type=r|w start len"
 *
 * Prints one line: "locked", "conflict" or "error ERRNO_NAME"; exit status 0, 1, 2 respectively.
 * With CMD, the lock is held while CMD runs (its exit status is returned), then released.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int report_errno(int e) {
    if (e == EAGAIN || e == EACCES || e == EWOULDBLOCK) { puts("conflict"); return 1; }
    printf("error %s\n", strerrorname_np(e) ? strerrorname_np(e) : "?");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 5) { fputs("usage: tlock FILE r|w|R|W|f|s|t START LEN [CMD...]\n", stderr); return 64; }
    char mode = argv[2][0];
    int fd = open(argv[1], (mode == 'r' || mode == 'R' || mode == 's') ? O_RDONLY : O_RDWR);
    if (fd < 0) return report_errno(errno);
    struct flock fl = {0};
    fl.l_whence = SEEK_SET;
    fl.l_start = strtoll(argv[3], NULL, 10);
    fl.l_len = strtoll(argv[4], NULL, 10);
    int rc;
    switch (mode) {
    case 't':
        fl.l_type = F_WRLCK;
        if (fcntl(fd, F_GETLK, &fl) < 0) return report_errno(errno);
        if (fl.l_type == F_UNLCK) puts("free");
        else printf("held pid=%d type=%c %lld %lld\n", (int)fl.l_pid, fl.l_type == F_RDLCK ? 'r' : 'w',
                    (long long)fl.l_start, (long long)fl.l_len);
        return 0;
    case 'r': case 'w': case 'R': case 'W':
        fl.l_type = (mode == 'r' || mode == 'R') ? F_RDLCK : F_WRLCK;
        rc = fcntl(fd, (mode == 'R' || mode == 'W') ? F_SETLKW : F_SETLK, &fl);
        break;
    case 'f': case 's':
        rc = flock(fd, (mode == 'f' ? LOCK_EX : LOCK_SH) | LOCK_NB);
        break;
    default:
        fputs("tlock: bad mode\n", stderr);
        return 64;
    }
    if (rc < 0) return report_errno(errno);
    puts("locked");
    fflush(stdout);
    if (argc == 5) return 0;
    pid_t pid = fork();
    if (pid == 0) { execvp(argv[5], argv + 5); _exit(127); }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
