/*
 * append_floor.c - the floor for bench/engine.sh: N appends of a record of
 * the size drrun writes, each followed by fdatasync, to a fresh file.
 * Usage: append_floor FILE N BYTES
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fputs("usage: append_floor FILE N BYTES\n", stderr);
		return 64;
	}
	int n = atoi(argv[2]), size = atoi(argv[3]);
	char *rec = malloc((size_t)size);
	memset(rec, 'x', (size_t)size);
	rec[size - 1] = '\n';
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		if (write(fd, rec, (size_t)size) != size || fdatasync(fd) < 0) {
			perror("append");
			return 1;
		}
	}
	close(fd);
	free(rec);
	return 0;
}
