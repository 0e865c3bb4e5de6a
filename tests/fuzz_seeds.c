/*
 * fuzz_seeds.c - a main() for the libFuzzer harnesses of fuzz/, so make test
 * builds each with the ordinary compiler and runs it over its seed corpus:
 * a harness that no longer compiles against the engine, or a seed that now
 * crashes, fails the suite even though fuzzing itself runs outside it.
 *   fuzz-seeds-NAME FILE...   (exit 0 when every input was run)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	int n = 0;
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			return 1;
		}
		static uint8_t buf[1 << 20];
		size_t len = fread(buf, 1, sizeof buf, f);
		int bad = ferror(f);
		fclose(f);
		if (bad) {
			fprintf(stderr, "%s: read error\n", argv[i]);
			return 1;
		}
		LLVMFuzzerTestOneInput(buf, len);
		/* every prefix too: truncated input is what parsers meet most */
		for (size_t cut = 0; cut < len; cut += 1 + len / 64)
			LLVMFuzzerTestOneInput(buf, cut);
		n++;
	}
	printf("%d seeds\n", n);
	return n ? 0 : 1;
}
