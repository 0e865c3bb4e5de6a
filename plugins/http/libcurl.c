/*
 * http/libcurl.c - libcurl, opened when drrun.http is first required.
 *
 * drrun does not link libcurl: mapping it and the thirty libraries it pulls
 * in (TLS, GSS-API, LDAP, IDN, RTMP, compression) was most of drrun's
 * start-up, paid by `--version`, `check`, `plan` and every run that makes no
 * HTTP request.  http.c calls libcurl's functions by their own names, with
 * curl.h's type checks; this file defines those names as thin forwarders to
 * a table of pointers that http_libcurl_load() resolves once, all or
 * nothing (drr_dl_load), before http.c makes its first call.  A function
 * http.c starts to use must be added to the lists below: until it is, the
 * link fails with its name.
 */
#define CURL_DISABLE_TYPECHECK /* the forwarders take what curl.h declares */
#include "drrun/plugin.h"

#include <stdarg.h>

#include <curl/curl.h>

#include "http/libcurl.h"

/* X(return type, name, (parameters), (arguments)): fixed-argument functions
 * that return a value; XV: those returning void. */
#define CURL_FUNCS(X)                                                                             \
	X(CURLcode, curl_global_init, (long flags), (flags))                                      \
	X(CURL *, curl_easy_init, (void), ())                                                     \
	X(CURLcode, curl_easy_perform, (CURL * e), (e))                                           \
	X(const char *, curl_easy_strerror, (CURLcode c), (c))                                    \
	X(CURLM *, curl_multi_init, (void), ())                                                   \
	X(CURLcode, curl_easy_pause, (CURL * e, int bits), (e, bits))                             \
	X(CURLMcode, curl_multi_cleanup, (CURLM * m), (m))                                        \
	X(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL * e), (m, e))                        \
	X(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL * e), (m, e))                     \
	X(CURLMcode, curl_multi_assign, (CURLM * m, curl_socket_t s, void *p), (m, s, p))         \
	X(CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left))                     \
	X(CURLMcode, curl_multi_socket_action, (CURLM * m, curl_socket_t s, int ev, int *n),      \
	  (m, s, ev, n))                                                                          \
	X(const char *, curl_multi_strerror, (CURLMcode c), (c))                                  \
	X(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s)) \
	X(curl_version_info_data *, curl_version_info, (CURLversion v), (v))
#define CURL_VOID_FUNCS(XV)                    \
	XV(curl_global_cleanup, (void), ())    \
	XV(curl_easy_cleanup, (CURL * e), (e)) \
	XV(curl_slist_free_all, (struct curl_slist * l), (l))

/* The table: one pointer per function, NULL until loaded. */
#define PTR(ret, name, params, args) static ret(*p_##name) params;
#define VPTR(name, params, args) static void(*p_##name) params;
CURL_FUNCS(PTR)
CURL_VOID_FUNCS(VPTR)
static CURLcode (*p_curl_easy_setopt)(CURL *, CURLoption, ...);
static CURLcode (*p_curl_easy_getinfo)(CURL *, CURLINFO, ...);
static CURLMcode (*p_curl_multi_setopt)(CURLM *, CURLMoption, ...);

int http_libcurl_load(char *err, size_t errlen)
{
	static int loaded;
	if (loaded)
		return 0;
#define SYM(ret, name, params, args) { #name, (void **)&p_##name },
#define VSYM(name, params, args) { #name, (void **)&p_##name },
	static const struct drr_dl_sym syms[] = {
		CURL_FUNCS(SYM)
			CURL_VOID_FUNCS(VSYM){ "curl_easy_setopt", (void **)&p_curl_easy_setopt },
		{ "curl_easy_getinfo", (void **)&p_curl_easy_getinfo },
		{ "curl_multi_setopt", (void **)&p_curl_multi_setopt },
		{ NULL, NULL },
	};
	/* libcurl.so.4 is libcurl's ABI since 2006 */
	static const char *const sonames[] = { "libcurl.so.4", "libcurl.so", NULL };
	if (drr_dl_load(sonames, syms, err, errlen) < 0)
		return -1;
	loaded = 1;
	return 0;
}

/* The forwarders.  Nothing in http.c runs before http_libcurl_load(). */
#define FWD(ret, name, params, args)  \
	ret name params               \
	{                             \
		return p_##name args; \
	}
#define VFWD(name, params, args) \
	void name params         \
	{                        \
		p_##name args;   \
	}
CURL_FUNCS(FWD)
CURL_VOID_FUNCS(VFWD)

/* The options' third argument has the type the option's number says
 * (curl.h's CURLOPTTYPE_* ranges, which multi options share): forward it
 * as exactly that type. */
#define SETOPT_FORWARD(call, h, opt, ap)                                          \
	do {                                                                      \
		if ((opt) < CURLOPTTYPE_OBJECTPOINT)                              \
			return call(h, opt, va_arg(ap, long));                    \
		if ((opt) < CURLOPTTYPE_FUNCTIONPOINT)                            \
			return call(h, opt, va_arg(ap, void *));                  \
		if ((opt) < CURLOPTTYPE_OFF_T)                                    \
			return call(h, opt, va_arg(ap, void (*)(void)));          \
		if ((opt) < CURLOPTTYPE_BLOB)                                     \
			return call(h, opt, va_arg(ap, curl_off_t));              \
		return call(h, opt, va_arg(ap, void *)); /* struct curl_blob * */ \
	} while (0)

static CURLcode easy_setopt(CURL *h, CURLoption opt, va_list ap)
{
	SETOPT_FORWARD(p_curl_easy_setopt, h, opt, ap);
}

CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	va_list ap;
	va_start(ap, opt);
	CURLcode rc = easy_setopt(h, opt, ap);
	va_end(ap);
	return rc;
}

static CURLMcode multi_setopt(CURLM *m, CURLMoption opt, va_list ap)
{
	SETOPT_FORWARD(p_curl_multi_setopt, m, opt, ap);
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption opt, ...)
{
	va_list ap;
	va_start(ap, opt);
	CURLMcode rc = multi_setopt(m, opt, ap);
	va_end(ap);
	return rc;
}

/* Every CURLINFO_* takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	va_list ap;
	va_start(ap, info);
	void *out = va_arg(ap, void *);
	va_end(ap);
	return p_curl_easy_getinfo(h, info, out);
}
