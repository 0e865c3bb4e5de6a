/*
 * serve/libmhd.c - libmicrohttpd, opened when `drrun serve` starts.
 *
 * Like libcurl (plugins/http/libcurl.c), libmicrohttpd is not linked: it
 * pulls in GnuTLS and its dozen libraries, which every other verb would pay
 * for at start-up.  http.c calls MHD's functions by their own names; this
 * file defines those names as forwarders to pointers that serve_mhd_load()
 * resolves once, all or nothing, before the first call.
 */
#include "drrun/plugin.h"

#include <stdarg.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "serve/serve.h"

#define MHD_FUNCS(X)                                                                              \
	X(enum MHD_Result, MHD_run, (struct MHD_Daemon * d), (d))                                 \
	X(enum MHD_Result, MHD_get_timeout, (struct MHD_Daemon * d, MHD_UNSIGNED_LONG_LONG * t),  \
	  (d, t))                                                                                 \
	X(MHD_socket, MHD_quiesce_daemon, (struct MHD_Daemon * d), (d))                           \
	X(const char *, MHD_lookup_connection_value,                                              \
	  (struct MHD_Connection * c, enum MHD_ValueKind k, const char *key), (c, k, key))        \
	X(struct MHD_Response *, MHD_create_response_from_buffer,                                 \
	  (size_t n, void *buf, enum MHD_ResponseMemoryMode m), (n, buf, m))                      \
	X(enum MHD_Result, MHD_add_response_header,                                               \
	  (struct MHD_Response * r, const char *h, const char *v), (r, h, v))                     \
	X(enum MHD_Result, MHD_queue_response,                                                    \
	  (struct MHD_Connection * c, unsigned int code, struct MHD_Response *r), (c, code, r))   \
	X(enum MHD_Result, MHD_is_feature_supported, (enum MHD_FEATURE f), (f))

#define MHD_VOID_FUNCS(XV)                                                   \
	XV(MHD_stop_daemon, (struct MHD_Daemon * d), (d))                    \
	XV(MHD_destroy_response, (struct MHD_Response * r), (r))             \
	XV(MHD_suspend_connection, (struct MHD_Connection * c), (c))         \
	XV(MHD_resume_connection, (struct MHD_Connection * c), (c))          \
	XV(MHD_set_panic_func, (MHD_PanicCallback cb, void *cls), (cb, cls))

#define PTR(ret, name, params, args) static ret(*p_##name) params;
#define VPTR(name, params, args) static void(*p_##name) params;
MHD_FUNCS(PTR)
MHD_VOID_FUNCS(VPTR)
static struct MHD_Daemon *(*p_MHD_start_daemon_va)(unsigned int, uint16_t, MHD_AcceptPolicyCallback,
						    void *, MHD_AccessHandlerCallback, void *,
						    va_list);
static const union MHD_DaemonInfo *(*p_MHD_get_daemon_info)(struct MHD_Daemon *,
							     enum MHD_DaemonInfoType, ...);
static const union MHD_ConnectionInfo *(*p_MHD_get_connection_info)(struct MHD_Connection *,
								     enum MHD_ConnectionInfoType,
								     ...);

int serve_mhd_load(char *err, size_t errlen)
{
	static int loaded;
	if (loaded)
		return 0;
#define SYM(ret, name, params, args) { #name, (void **)&p_##name },
#define VSYM(name, params, args) { #name, (void **)&p_##name },
	static const struct drr_dl_sym syms[] = {
		MHD_FUNCS(SYM) MHD_VOID_FUNCS(VSYM){ "MHD_start_daemon_va", (void **)&p_MHD_start_daemon_va },
		{ "MHD_get_daemon_info", (void **)&p_MHD_get_daemon_info },
		{ "MHD_get_connection_info", (void **)&p_MHD_get_connection_info },
		{ NULL, NULL },
	};
	/* libmicrohttpd.so.12 is its ABI since 0.9.x */
	static const char *const sonames[] = { "libmicrohttpd.so.12", "libmicrohttpd.so", NULL };
	if (drr_dl_load(sonames, syms, err, errlen) < 0)
		return -1;
	loaded = 1;
	return 0;
}

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
MHD_FUNCS(FWD)
MHD_VOID_FUNCS(VFWD)

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
				    void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	va_list ap;
	va_start(ap, dh_cls);
	struct MHD_Daemon *d = p_MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

/* serve asks only for infos that take no further argument */
const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *d, enum MHD_DaemonInfoType t,
						...)
{
	return p_MHD_get_daemon_info(d, t);
}

const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *c,
							 enum MHD_ConnectionInfoType t, ...)
{
	return p_MHD_get_connection_info(c, t);
}
