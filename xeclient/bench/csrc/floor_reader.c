/*
 * floor_reader: the C floor of `xeclient bench` figure 1 (delivery latency).
 *
 * The minimal reader a Python listener is compared with: poll(2) for POLLIN,
 * read(2) what is there, and for every whole record take CLOCK_MONOTONIC and
 * subtract the record's timestamp_ns (written by the producer just before its
 * write(2)).  Records are the 24-byte VM_ERR layout of cdefs/xe_drm_events.h:
 *
 *     u32 type:24 | subtype:8;  u32 info;  u32 vm_id;  s32 error_code;  u64 timestamp_ns
 *
 * The record length is taken from each record's info & 0x7f, so shorter
 * records (8-byte LOSS) parse too; records split across reads are carried.
 *
 * usage: floor_reader FD COUNT
 *   Reads FD (inherited, e.g. the read end of a pipe) until COUNT records with a
 *   timestamp arrived or EOF, then prints one latency in ns per line on stdout.
 *   It prints "ready" on stderr once it is about to poll, so the producer can
 *   start without counting the reader's start-up.
 *
 * Built at run time by xeclient.bench with the system compiler (cc -O2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	unsigned char buf[8192];
	size_t have = 0;
	long count, got = 0;
	int64_t *lat;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: %s FD COUNT\n", argv[0]);
		return 2;
	}
	fd = atoi(argv[1]);
	count = atol(argv[2]);
	if (count <= 0)
		return 2;
	lat = calloc((size_t)count, sizeof(*lat));
	if (!lat)
		return 1;
	fprintf(stderr, "ready\n");
	fflush(stderr);

	while (got < count) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		size_t off = 0;
		int64_t t;

		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		n = read(fd, buf + have, sizeof(buf) - have);
		t = now_ns();
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			perror("read");
			return 1;
		}
		if (n == 0)
			break; /* EOF: the producer closed its end */
		have += (size_t)n;
		while (have - off >= 8) {
			uint32_t info, len;

			memcpy(&info, buf + off + 4, 4);
			len = info & 0x7f;
			if (len < 8) {
				fprintf(stderr, "bad record length %u\n", len);
				return 1;
			}
			if (have - off < len)
				break;
			if (len >= 24 && got < count) {
				int64_t stamp;

				memcpy(&stamp, buf + off + 16, 8);
				lat[got++] = t - stamp;
			}
			off += len;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	for (long i = 0; i < got; i++)
		printf("%lld\n", (long long)lat[i]);
	free(lat);
	return 0;
}
