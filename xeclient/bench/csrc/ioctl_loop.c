/*
 * ioctl_loop: the C reference of `xeclient bench` figure 5 (binding overhead).
 *
 * Times ITERATIONS calls of ioctl(fd, FIONREAD, &int) on the read end of a
 * plain pipe (the same call the bench makes through the seam with a 4-byte
 * buffer), REPEATS times, and prints the best and the median ns per call:
 *
 *     best_ns median_ns
 *
 * usage: ioctl_loop ITERATIONS REPEATS
 * Built at run time by xeclient.bench with the system compiler (cc -O2).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long iterations, repeats;
	double *per_call;
	int fds[2];

	if (argc != 3) {
		fprintf(stderr, "usage: %s ITERATIONS REPEATS\n", argv[0]);
		return 2;
	}
	iterations = atol(argv[1]);
	repeats = atol(argv[2]);
	if (iterations <= 0 || repeats <= 0)
		return 2;
	per_call = calloc((size_t)repeats, sizeof(*per_call));
	if (!per_call || pipe(fds) < 0) {
		perror("ioctl_loop");
		return 1;
	}
	for (long r = 0; r < repeats; r++) {
		int64_t t0 = now_ns();

		for (long i = 0; i < iterations; i++) {
			int avail;

			if (ioctl(fds[0], FIONREAD, &avail) < 0) {
				perror("ioctl(FIONREAD)");
				return 1;
			}
			__asm__ __volatile__("" : : "r"(avail) : "memory");
		}
		per_call[r] = (double)(now_ns() - t0) / (double)iterations;
	}
	qsort(per_call, (size_t)repeats, sizeof(*per_call), cmp);
	printf("%.1f %.1f\n", per_call[0], per_call[repeats / 2]);
	return 0;
}
