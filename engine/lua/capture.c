/*
 * capture.c - a program's output kept up to a cap, for exec and ssh
 * (struct drr_capture in include/drrun/plugin.h): one copy of the cap, the
 * count and the truncation note.
 */
#include "lua/task.h"

#include <stdio.h>

void drr_capture_add(struct drr_capture *c, const void *p, size_t n)
{
	size_t room = c->total < c->cap ? c->cap - c->total : 0;
	drr_buf_add(&c->buf, p, n < room ? n : room);
	c->total += n;
}

int drr_capture_truncated(const struct drr_capture *c)
{
	return c->total > c->cap;
}

void drr_capture_push(lua_State *L, const struct drr_capture *c)
{
	luaL_Buffer lb;
	luaL_buffinit(L, &lb);
	luaL_addlstring(&lb, c->buf.data ? c->buf.data : "", c->buf.len);
	if (drr_capture_truncated(c)) {
		char note[96];
		snprintf(note, sizeof note, "\n[drrun: output truncated: %zu of %zu bytes kept]\n",
			 c->cap, c->total);
		luaL_addstring(&lb, note);
	}
	luaL_pushresult(&lb);
}

void drr_capture_free(struct drr_capture *c)
{
	drr_buf_free(&c->buf);
	c->total = 0;
}
