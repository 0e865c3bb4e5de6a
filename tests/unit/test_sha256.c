/*
 * test_sha256.c - sha256.c, the engine's SHA-256: FIPS 180-4's examples,
 * the same digest whatever the update boundaries, agreement with OpenSSL
 * (opened through drrun/libcrypto.h) for every length from 0 to 1100, and
 * HMAC-SHA256 against RFC 4231.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "drrun/libcrypto.h"

static void hex_of(const unsigned char md[32], char hex[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void test_fips_examples(void **state)
{
	(void)state;
	char hex[65];
	drr_sha256_hex("", 0, hex);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	drr_sha256_hex("abc", 3, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	drr_sha256_hex(m, strlen(m), hex);
	assert_string_equal(hex,
			    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* a million 'a', fed in uneven pieces */
	struct drr_sha256 c;
	drr_sha256_init(&c);
	char a[997];
	memset(a, 'a', sizeof a);
	size_t left = 1000000;
	while (left) {
		size_t n = left < sizeof a ? left : sizeof a;
		drr_sha256_update(&c, a, n);
		left -= n;
	}
	unsigned char md[32];
	drr_sha256_final(&c, md);
	hex_of(md, hex);
	assert_string_equal(hex,
			    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void agrees_with_openssl(void)
{
	char err[300];
	assert_non_null(drr_libcrypto_load(err, sizeof err));
	unsigned char buf[1100];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t n = 0; n <= sizeof buf; n++) {
		unsigned char want[32], got[32];
		SHA256(buf, n, want);
		struct drr_sha256 c;
		drr_sha256_init(&c);
		size_t step = n % 70 + 1; /* update boundaries everywhere */
		for (size_t off = 0; off < n; off += step)
			drr_sha256_update(&c, buf + off, n - off < step ? n - off : step);
		drr_sha256_final(&c, got);
		if (memcmp(want, got, 32) != 0)
			fail_msg("length %zu differs from OpenSSL (SHA extensions: %d)", n,
				 drr_sha256_uses_ni());
	}
}

/* The portable code, and the SHA extensions where the processor has them. */
static void test_agrees_with_openssl(void **state)
{
	(void)state;
	drr_sha256_use_ni(0);
	assert_int_equal(drr_sha256_uses_ni(), 0);
	agrees_with_openssl();
	test_fips_examples(NULL);
	drr_sha256_use_ni(1);
	if (!drr_sha256_uses_ni())
		print_message("no SHA extensions here: the portable code only\n");
	agrees_with_openssl();
	test_fips_examples(NULL);
}

static void test_hmac_rfc4231(void **state)
{
	(void)state;
	char hex[65];
	unsigned char key[20];
	memset(key, 0x0b, sizeof key);
	drr_hmac_sha256_hex(key, sizeof key, "Hi There", 8, hex);
	assert_string_equal(hex,
			    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	drr_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex);
	assert_string_equal(hex,
			    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	unsigned char big[131];
	memset(big, 0xaa, sizeof big); /* a key longer than the block is hashed first */
	const char *m = "Test Using Larger Than Block-Size Key - Hash Key First";
	drr_hmac_sha256_hex(big, sizeof big, m, strlen(m), hex);
	assert_string_equal(hex,
			    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_ct_equal(void **state)
{
	(void)state;
	assert_true(drr_ct_equal("abcd", "abcd", 4));
	assert_false(drr_ct_equal("abcd", "abce", 4));
	assert_false(drr_ct_equal("xbcd", "abcd", 4));
	assert_true(drr_ct_equal("", "", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fips_examples),
		cmocka_unit_test(test_agrees_with_openssl),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_ct_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
