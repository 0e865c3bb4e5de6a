/*
 * loadgen.c - the load for bench/serve.sh: send every request of a file,
 * each exactly once, over C keep-alive connections to HOST:PORT, one
 * request at a time per connection, and time each from its first byte out
 * to the last byte of its answer in.
 * Usage: loadgen HOST PORT C REQFILE
 * REQFILE: "<length>\n" then that many bytes of raw HTTP/1.1 request, again
 * and again.  Answers must carry Content-Length (both servers' do).
 * Prints one line:
 *   "sent N ok N2xx other N errors N wall_s S rps R p50_ms P p99_ms P max_ms M"
 * A connection the server closes is opened again; its request counts as an
 * error and is not sent again.  Connection i comes from 127.0.1.(1 + i/32).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct req {
	const char *p;
	size_t n;
};

struct conn {
	int fd, i;
	long req; /* -1: idle */
	size_t out;
	char in[65536];
	size_t inlen;
	double t0;
};

static struct req *reqs;
static long nreqs, next_req, done, nlat, ok, other, errors;
static double *lat;
static struct sockaddr_in addr;
static int ep;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void load(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)size + 1);
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		perror(path);
		exit(1);
	}
	fclose(f);
	long cap = 1024;
	reqs = malloc((size_t)cap * sizeof *reqs);
	for (char *p = buf; p < buf + size;) {
		char *nl = memchr(p, '\n', (size_t)(buf + size - p));
		if (!nl)
			break;
		size_t n = strtoul(p, NULL, 10);
		if (nreqs == cap)
			reqs = realloc(reqs, (size_t)(cap *= 2) * sizeof *reqs);
		reqs[nreqs++] = (struct req){ nl + 1, n };
		p = nl + 1 + n;
	}
	lat = calloc((size_t)nreqs + 1, sizeof *lat);
}

/* Connection i comes from 127.0.1.(1 + i / 32): a server's limit of
 * connections per client address (drrun serve's is 64) is not what is
 * measured. */
static void conn_open(struct conn *c, int i)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in src = { .sin_family = AF_INET };
	src.sin_addr.s_addr = htonl((127u << 24) | (1u << 8) | (unsigned)(1 + i / 32));
	if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) {
		perror("bind");
		exit(1);
	}
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
		perror("connect");
		exit(1);
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	c->req = -1;
	c->inlen = 0;
}

static void conn_next(struct conn *c)
{
	c->req = next_req < nreqs ? next_req++ : -1;
	c->out = 0;
	c->inlen = 0;
	struct epoll_event ev = { .events = EPOLLIN | (c->req >= 0 ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	if (c->req >= 0)
		c->t0 = now();
}

/* A whole answer in c->in?  Its length, or 0. */
static size_t answer_len(struct conn *c, int *code)
{
	char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t head = (size_t)(end - c->in) + 4, body = 0;
	*code = atoi(c->in + 9);
	for (char *p = c->in; p < end; p++)
		if ((p == c->in || p[-1] == '\n') && !strncasecmp(p, "Content-Length:", 15))
			body = strtoul(p + 15, NULL, 10);
	return c->inlen >= head + body ? head + body : 0;
}

static void conn_lost(struct conn *c)
{
	if (c->req >= 0) {
		errors++;
		done++;
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	conn_open(c, c->i);
	conn_next(c);
}

static void on_event(struct conn *c, unsigned events)
{
	if (c->req < 0)
		return;
	if (events & EPOLLOUT) {
		const struct req *r = &reqs[c->req];
		ssize_t w = write(c->fd, r->p + c->out, r->n - c->out);
		if (w < 0 && errno != EAGAIN) {
			conn_lost(c);
			return;
		}
		if (w > 0 && (c->out += (size_t)w) == r->n) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
		if (n <= 0) {
			if (n < 0 && errno == EAGAIN)
				return;
			conn_lost(c);
			return;
		}
		c->inlen += (size_t)n;
		int code = 0;
		if (!answer_len(c, &code))
			return;
		lat[nlat++] = now() - c->t0;
		done++;
		if (code >= 200 && code < 300)
			ok++;
		else
			other++;
		conn_next(c);
	}
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fputs("usage: loadgen HOST PORT C REQFILE\n", stderr);
		return 64;
	}
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fputs("loadgen: HOST must be an IPv4 address\n", stderr);
		return 64;
	}
	int nc = atoi(argv[3]);
	load(argv[4]);
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct conn *cs = calloc((size_t)nc, sizeof *cs);
	double t0 = now();
	for (int i = 0; i < nc; i++) {
		cs[i].i = i;
		conn_open(&cs[i], i);
		conn_next(&cs[i]);
	}
	struct epoll_event evs[256];
	while (done < nreqs) {
		int n = epoll_wait(ep, evs, 256, 30000);
		if (n == 0) {
			fprintf(stderr, "loadgen: no answer for 30 s (%ld of %ld done)\n", done, nreqs);
			return 1;
		}
		for (int i = 0; i < n; i++)
			on_event(evs[i].data.ptr, evs[i].events);
	}
	double wall = now() - t0;
	long nl = nlat;
	qsort(lat, (size_t)nl, sizeof *lat, cmp);
	printf("sent %ld ok %ld other %ld errors %ld wall_s %.3f rps %.1f p50_ms %.3f p99_ms %.3f "
	       "max_ms %.3f\n",
	       nreqs, ok, other, errors, wall, (double)nreqs / wall,
	       nl ? lat[nl / 2] * 1e3 : 0, nl ? lat[(long)((double)nl * 0.99)] * 1e3 : 0,
	       nl ? lat[nl - 1] * 1e3 : 0);
	return 0;
}
