/*
 * etcd.c - etcd v3 through its JSON gateway (servers.md §4): one POST, its
 * JSON answer, and the base64 that keys and values travel in.  Blocking,
 * with a timeout: call it on the libuv thread pool, or before a loop runs.
 * The users: serve's dedupe keys (serve/etcd.c) and a run's lock (elock.c).
 */
#include "journal/journal.h"
#include "http/libcurl.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_CAP (1 << 20)

int drr_etcd_url_check(const char *url, char *err, size_t errlen)
{
	const char *hp = url && !strncmp(url, "etcd://", 7) ? url + 7 : NULL;
	const char *colon = hp ? strrchr(hp, ':') : NULL;
	if (!hp || !*hp || strchr(hp, '/') || !colon || colon == hp || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5) {
		snprintf(err, errlen, "--lock '%s': use etcd://HOST:PORT", url ? url : "");
		return -1;
	}
	return 0;
}

char *drr_etcd_base(const char *url, char *err, size_t errlen)
{
	if (drr_etcd_url_check(url, err, errlen) < 0)
		return NULL;
	const char *hp = url + 7;
	if (http_libcurl_load(err, errlen) < 0)
		return NULL;
	static int inited;
	if (!inited++)
		curl_global_init(CURL_GLOBAL_DEFAULT);
	return drr_xasprintf("http://%s", hp);
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
	struct drr_buf *b = ud;
	if (b->len + sz * n > BODY_CAP)
		return 0;
	drr_buf_add(b, p, sz * n);
	return sz * n;
}

/* etcd's own error: {"error": "...", "code": N} */
static void http_error(long status, const struct drr_buf *b, char *err, size_t errlen)
{
	json_t *j = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(j, "error"));
	if (!msg)
		msg = json_string_value(json_object_get(j, "message"));
	snprintf(err, errlen, "HTTP %ld%s%.200s", status, msg ? ": " : "", msg ? msg : "");
	json_decref(j);
}

json_t *drr_etcd_post(const char *base, const char *path, const char *body, long timeout_ms,
		      char *err, size_t errlen)
{
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(err, errlen, "cannot make an HTTP request");
		return NULL;
	}
	char *url = drr_xasprintf("%s%s", base, path);
	struct drr_buf b = { 0 };
	char cerr[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms / 2);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	CURLcode rc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	free(url);
	json_t *ans = NULL;
	if (rc != CURLE_OK)
		snprintf(err, errlen, "%s",
			 rc == CURLE_OPERATION_TIMEDOUT ? "timeout"
			 : *cerr			? cerr
							: curl_easy_strerror(rc));
	else if (status != 200)
		http_error(status, &b, err, errlen);
	else if (!(ans = b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL))
		snprintf(err, errlen, "not a JSON answer");
	drr_buf_free(&b);
	return ans;
}

json_t *drr_etcd_call(const char *base, const char *path, json_t *body, long timeout_ms, char *err,
		      size_t errlen)
{
	char *t = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	json_t *ans = drr_etcd_post(base, path, t ? t : "{}", timeout_ms, err, errlen);
	free(t);
	return ans;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *drr_etcd_b64(const char *s)
{
	size_t n = strlen(s);
	char *o = drr_xmalloc(4 * ((n + 2) / 3) + 1), *p = o;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		*p++ = B64[(v >> 18) & 63];
		*p++ = B64[(v >> 12) & 63];
		*p++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
		*p++ = i + 2 < n ? B64[v & 63] : '=';
	}
	*p = '\0';
	return o;
}

char *drr_etcd_unb64(const char *s)
{
	size_t n = strlen(s);
	char *o = drr_xmalloc(n / 4 * 3 + 4), *p = o;
	unsigned v = 0;
	int bits = 0;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		const char *c = strchr(B64, s[i]);
		if (!c || !s[i]) {
			free(o);
			return NULL;
		}
		v = (v << 6) | (unsigned)(c - B64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*p++ = (char)((v >> bits) & 0xff);
		}
	}
	*p = '\0';
	return o;
}
