/* A delay line between two TUN devices: what `tc netem delay` does, for kernels without netem.
 *
 *   delay DELAY_US HOST_TUN NAMESPACE_PATH NS_TUN
 *
 * Attaches to HOST_TUN (in the current network namespace) and, after entering the namespace at
 * NAMESPACE_PATH (/var/run/netns/NAME), to NS_TUN. Every IP packet read from one device is written
 * to the other DELAY_US microseconds later, in order; when more than SLOTS packets are in flight in
 * one direction the newest is dropped (like netem's limit). Prints "ready" once attached, and runs
 * until SIGTERM/SIGINT. Both devices must exist (ip tuntap add ... mode tun).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 16384
#define MAX_PACKET 2048

struct slot {
    uint64_t due;
    uint16_t len;
    unsigned char data[MAX_PACKET];
};

struct line {
    int in, out;
    struct slot *slots;
    unsigned head, tail; /* head: next to send; tail: next free */
    unsigned long dropped;
};

static volatile sig_atomic_t stopping = 0;

static void on_signal(int sig) { (void)sig; stopping = 1; }

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int attach(const char *name) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) { perror("open /dev/net/tun"); exit(2); }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("TUNSETIFF"); exit(2); }
    return fd;
}

static void take(struct line *l, uint64_t delay) {
    for (;;) {
        unsigned next = (l->tail + 1) % SLOTS;
        struct slot *s = &l->slots[l->tail];
        ssize_t n = read(l->in, s->data, MAX_PACKET);
        if (n <= 0) return; /* EAGAIN: nothing more for now */
        if (next == l->head) { l->dropped++; continue; }
        s->len = (uint16_t)n;
        s->due = now_us() + delay;
        l->tail = next;
    }
}

static void give(struct line *l, uint64_t now) {
    while (l->head != l->tail && l->slots[l->head].due <= now) {
        struct slot *s = &l->slots[l->head];
        if (write(l->out, s->data, s->len) < 0 && errno == EAGAIN) return;
        l->head = (l->head + 1) % SLOTS;
    }
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s DELAY_US HOST_TUN NAMESPACE_PATH NS_TUN\n", argv[0]);
        return 2;
    }
    uint64_t delay = strtoull(argv[1], NULL, 10);
    int host = attach(argv[2]);
    int ns = open(argv[3], O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) { perror("setns"); return 2; }
    int inner = attach(argv[4]);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    struct line out = {host, inner, calloc(SLOTS, sizeof(struct slot)), 0, 0, 0};
    struct line back = {inner, host, calloc(SLOTS, sizeof(struct slot)), 0, 0, 0};
    if (!out.slots || !back.slots) { perror("calloc"); return 2; }
    printf("ready\n");
    fflush(stdout);
    struct pollfd fds[2] = {{host, POLLIN, 0}, {inner, POLLIN, 0}};
    while (!stopping) {
        uint64_t now = now_us(), next = UINT64_MAX;
        if (out.head != out.tail) next = out.slots[out.head].due;
        if (back.head != back.tail && back.slots[back.head].due < next)
            next = back.slots[back.head].due;
        struct timespec wait = {1, 0};
        if (next != UINT64_MAX) {
            uint64_t left = next > now ? next - now : 0;
            wait.tv_sec = (time_t)(left / 1000000u);
            wait.tv_nsec = (long)(left % 1000000u) * 1000;
        }
        if (ppoll(fds, 2, &wait, NULL) < 0 && errno != EINTR) { perror("ppoll"); return 1; }
        if (fds[0].revents & POLLIN) take(&out, delay);
        if (fds[1].revents & POLLIN) take(&back, delay);
        now = now_us();
        give(&out, now);
        give(&back, now);
    }
    fprintf(stderr, "dropped %lu out, %lu back\n", out.dropped, back.dropped);
    return 0;
}
