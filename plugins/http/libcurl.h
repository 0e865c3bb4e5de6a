/*
 * http/libcurl.h - libcurl, opened on first use (libcurl.c).
 */
#ifndef DRR_HTTP_LIBCURL_H
#define DRR_HTTP_LIBCURL_H

#include <stddef.h>

/* Open libcurl and resolve every function http.c calls; once.  0, or -1
 * with a one-line reason in err.  Call before any curl_* function. */
int http_libcurl_load(char *err, size_t errlen);

#endif
