/*
 * duk-host.c: a Duktape 2.7 test host for the Flotilla device agent.
 *
 * Runs one ES5 program in a Duktape heap with a counting, capped allocator and
 * a global `hal` object (firmware/src/hal.ts) whose every effect goes to Node.
 * Node drives it over a line protocol: commands on stdin, replies and events on
 * stdout, one per line. Bytes are lowercase hex; text (`log`, `uncaught`,
 * `result`, `error`, and the `eval` argument) escapes `\` as `\\`, LF as `\n`,
 * CR as `\r`. Every command is acknowledged by a final `ok` line.
 *
 * Node -> host                      host -> Node (events, any time during a command)
 *   cap N          heap cap, bytes     net open | net send HEX | net close
 *   slotsize N     resize+erase slots  flash write SLOT OFFSET HEX | flash erase SLOT
 *   resetreason N | battery N | sigstr N         boot write HEX
 *   flash SLOT HEX preload (rest 0xff) signal 1|0 | reset REASON | log TEXT | uncaught TEXT
 *   boot HEX | noboot                   host -> Node (replies, before `ok`)
 *   run PATH       evaluate a file        error TEXT (run/eval/bad command)
 *   open | data HEX | close  socket       result TEXT (eval)
 *   tick MS        advance virtual clock  mem CURRENT PEAK (gc, mem)
 *   gc | mem       memory after 2 GCs     dump slot N HEX | dump boot HEX|- (dump)
 *   eval TEXT      evaluate one line      bye CURRENT (quit: bytes left after destroy)
 *   dump | quit                         `ready BITS DUK_VERSION` once at start
 *
 * After the program calls hal.system.reset() the host is halted: no callback or
 * timer runs again and HAL effects are ignored (Node then starts a new host).
 * Errors thrown by JS never escape a protected call; they are reported.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "duktape.h"

#define BOOT_MAX 4096               /* a boot record is small on real boards */
#define TIMERS_PER_TICK 100000      /* bounds a timer that re-arms itself at 0 ms */

/* ---- counting allocator: payload bytes counted (what Duktape asked for), capped ---- */
static size_t mem_cur, mem_peak, mem_cap = 512 * 1024;

#if defined(DUK_USE_HEAPPTR16)
/*
 * Pointer compression (the low-memory build, duktape-build.ts): Duktape keeps
 * heap pointers in 16 bits, DUK_USE_HEAPPTR_ENC16/DEC16 in duk_config.h, as
 * 4-byte units from the start of one arena (4, not 8: a compiled function's
 * bytecode pointer points inside its data buffer, 4-byte aligned), so every
 * block comes from it: 256 KB, as a board reserves a region for the JS heap.
 * Address-ordered first fit over boundary-tagged 8-byte-aligned blocks (next
 * fit scattered small long-lived blocks over the arena: the compiler's growing
 * buffers found no room with 60 % of it free); free neighbours merge as the
 * walk meets them. Offset 0 is the first header, never a payload, so 0 encodes
 * NULL.
 */
#define ARENA_BYTES (0xfffeu * 4u)
typedef struct { uint32_t size; uint32_t req; } blk_t; /* size: the whole block, header included; req: bytes asked for, 0 when free */
static union { blk_t b[ARENA_BYTES / sizeof(blk_t)]; double align; } arena __attribute__((aligned(8)));
unsigned char *const flotilla_arena = (unsigned char *) &arena;
static size_t low;                   /* no free block below it: where a search starts (a block boundary) */
#define BLK(off) ((blk_t *) (flotilla_arena + (off)))
#define NEED(req) ((((size_t) (req) + 7u) & ~(size_t) 7u) + sizeof(blk_t))

static void arena_init(void) {
	BLK(0)->size = ARENA_BYTES - sizeof(blk_t); BLK(0)->req = 0;
	BLK(ARENA_BYTES - sizeof(blk_t))->size = 0; BLK(ARENA_BYTES - sizeof(blk_t))->req = 1; /* end mark, never free */
}
/* Merges the free blocks after the block at `off` into it (keeping `low` on a boundary). */
static void merge_next(size_t off) {
	blk_t *b = BLK(off), *n;
	while ((n = BLK(off + b->size))->req == 0) b->size += n->size;
	if (low > off && low < off + b->size) low = off;
}
/* Cuts the block at `off` to `need` bytes when the rest can hold a block; the rest is free. */
static void split(size_t off, size_t need) {
	blk_t *b = BLK(off);
	if (b->size - need >= 2 * sizeof(blk_t)) {
		BLK(off + need)->size = b->size - (uint32_t) need; BLK(off + need)->req = 0;
		b->size = (uint32_t) need;
		if (off + need < low) low = off + need;
		merge_next(off + need);
	}
}
static void *raw_alloc(size_t req) {
	size_t need = NEED(req), off;
	int seen_free = 0;
	if (need > ARENA_BYTES) return NULL;
	for (off = low; BLK(off)->size; off += BLK(off)->size) {
		if (BLK(off)->req) {
			if (!seen_free) low = off + BLK(off)->size;
			continue;
		}
		if (!seen_free) low = off;
		seen_free = 1;
		merge_next(off);
		if (BLK(off)->size < need) continue;
		split(off, need);
		BLK(off)->req = (uint32_t) req;
		return BLK(off) + 1;
	}
	return NULL;
}
static size_t raw_size(void *p) { return ((blk_t *) p - 1)->req; }
static void raw_free(void *p) {
	size_t off = (size_t) ((unsigned char *) p - flotilla_arena) - sizeof(blk_t);
	BLK(off)->req = 0;
	if (off < low) low = off;
	merge_next(off);
}
static void *raw_realloc(void *p, size_t req) {
	size_t off = (size_t) ((unsigned char *) p - flotilla_arena) - sizeof(blk_t), need = NEED(req), old = BLK(off)->req;
	void *q;
	if (need > ARENA_BYTES) return NULL;
	merge_next(off);                    /* grow in place over free blocks after it */
	if (BLK(off)->size >= need) {
		split(off, need);
		BLK(off)->req = (uint32_t) req;
		return p;
	}
	if (!(q = raw_alloc(req))) return NULL;
	memcpy(q, p, old);
	raw_free(p);
	return q;
}
#else
/* A size header before each block, on the C library's heap. */
typedef union { size_t size; double d; long long ll; void *p; } hdr_t;
static void arena_init(void) {}
static void *raw_alloc(size_t req) {
	hdr_t *h = (hdr_t *) malloc(sizeof(hdr_t) + req);
	if (!h) return NULL;
	h->size = req;
	return h + 1;
}
static size_t raw_size(void *p) { return ((hdr_t *) p - 1)->size; }
static void raw_free(void *p) { free((hdr_t *) p - 1); }
static void *raw_realloc(void *p, size_t req) {
	hdr_t *h = (hdr_t *) realloc((hdr_t *) p - 1, sizeof(hdr_t) + req);
	if (!h) return NULL;
	h->size = req;
	return h + 1;
}
#endif

static void *cnt_alloc(void *ud, duk_size_t size) {
	void *p;
	(void) ud;
	if (size == 0 || size > mem_cap - mem_cur || mem_cur > mem_cap) return NULL;
	if (!(p = raw_alloc(size))) return NULL;
	mem_cur += size;
	if (mem_cur > mem_peak) mem_peak = mem_cur;
	return p;
}
static void cnt_free(void *ud, void *ptr) {
	(void) ud;
	if (!ptr) return;
	mem_cur -= raw_size(ptr);
	raw_free(ptr);
}
static void *cnt_realloc(void *ud, void *ptr, duk_size_t size) {
	size_t old;
	void *p;
	if (!ptr) return cnt_alloc(ud, size);
	if (size == 0) { cnt_free(ud, ptr); return NULL; }
	old = raw_size(ptr);
	if (size > old && (mem_cur > mem_cap || size - old > mem_cap - mem_cur)) return NULL;
	if (!(p = raw_realloc(ptr, size))) return NULL;
	mem_cur = mem_cur - old + size;
	if (mem_cur > mem_peak) mem_peak = mem_cur;
	return p;
}
static void on_fatal(void *ud, const char *msg) {
	(void) ud;
	printf("fatal %s\n", msg ? msg : "?");
	fflush(stdout);
	abort();
}

/* ---- device state (flash lives outside the JS heap, as on a board) ---- */
static size_t slot_size = 65536;
static unsigned char *slots[2];
static unsigned char boot_rec[BOOT_MAX];
static size_t boot_len;
static int boot_present;
static double vclock;                /* virtual ms since boot, advanced by `tick` */
static double reset_reason, battery = -1, sigstr = -1;
static int halted;

typedef struct { double due; double id; } vtimer;
static vtimer *timers;
static size_t ntimers, captimers;
static double next_timer_id = 1;

/* ---- output helpers ---- */
static void out_hex(const unsigned char *p, size_t n) {
	static const char hx[] = "0123456789abcdef";
	size_t i;
	for (i = 0; i < n; i++) { putchar(hx[p[i] >> 4]); putchar(hx[p[i] & 15]); }
}
static void out_text(const char *s, size_t n) {
	size_t i;
	for (i = 0; i < n; i++) {
		if (s[i] == '\\') fputs("\\\\", stdout);
		else if (s[i] == '\n') fputs("\\n", stdout);
		else if (s[i] == '\r') fputs("\\r", stdout);
		else putchar(s[i]);
	}
}
/* Prints `tag <String(value at idx)>`; safe even if toString throws. */
static void out_value(duk_context *ctx, const char *tag, duk_idx_t idx) {
	duk_size_t n;
	const char *s = duk_safe_to_lstring(ctx, idx, &n);
	fputs(tag, stdout); putchar(' '); out_text(s, n); putchar('\n');
}
static int hexval(int c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}
/* Decodes hex in place; returns byte count or -1. */
static long unhex(char *s) {
	size_t n = strlen(s), i;
	if (n % 2) return -1;
	for (i = 0; i < n / 2; i++) {
		int a = hexval((unsigned char) s[2 * i]), b = hexval((unsigned char) s[2 * i + 1]);
		if (a < 0 || b < 0) return -1;
		s[i] = (char) (a * 16 + b);
	}
	return (long) (n / 2);
}
static size_t unescape(char *s) {
	char *r = s, *w = s;
	while (*r) {
		if (*r == '\\' && r[1]) {
			r++;
			*w++ = *r == 'n' ? '\n' : *r == 'r' ? '\r' : *r;
			r++;
		} else *w++ = *r++;
	}
	*w = 0;
	return (size_t) (w - s);
}

/* ---- JS helpers ---- */
static void push_u8(duk_context *ctx, const unsigned char *p, size_t n) {
	void *b = duk_push_fixed_buffer(ctx, n);
	if (n) memcpy(b, p, n);
	duk_push_buffer_object(ctx, -1, 0, n, DUK_BUFOBJ_UINT8ARRAY);
	duk_remove(ctx, -2);
}
static const unsigned char *get_bytes(duk_context *ctx, duk_idx_t idx, duk_size_t *n) {
	const unsigned char *p;
	if (!duk_is_buffer_data(ctx, idx)) (void) duk_type_error(ctx, "bytes must be a Uint8Array");
	p = (const unsigned char *) duk_get_buffer_data(ctx, idx, n);
	return p ? p : (const unsigned char *) "";
}
/* An integer in [0, max], else RangeError. */
static size_t get_index(duk_context *ctx, duk_idx_t idx, double max, const char *what) {
	double d = duk_to_number(ctx, idx);
	if (!(d >= 0 && d <= max) || d != floor(d)) (void) duk_range_error(ctx, "bad %s", what);
	return (size_t) d;
}
/* Calls [fn args...] at the stack top; a throw is reported, never propagated. */
static void call_protected(duk_context *ctx, duk_idx_t nargs) {
	if (duk_pcall(ctx, nargs) != DUK_EXEC_SUCCESS) out_value(ctx, "uncaught", -1);
	duk_pop(ctx);
}
/* Pushes stash[key] (or stash.timers[id] when key is NULL). */
static void push_stashed(duk_context *ctx, const char *key, double id) {
	duk_push_heap_stash(ctx);
	if (key) duk_get_prop_string(ctx, -1, key);
	else { duk_get_prop_string(ctx, -1, "timers"); duk_get_prop_index(ctx, -1, (duk_uarridx_t) id); duk_remove(ctx, -2); }
	duk_remove(ctx, -2);
}

/* ---- hal.net ---- */
static duk_ret_t net_open(duk_context *ctx) {
	static const char *keys[] = { "onOpen", "onData", "onClose" };
	int i;
	for (i = 0; i < 3; i++) if (!duk_is_callable(ctx, i)) (void) duk_type_error(ctx, "net.open: %s must be a function", keys[i]);
	if (halted) return 0;
	duk_push_heap_stash(ctx);
	for (i = 0; i < 3; i++) { duk_dup(ctx, i); duk_put_prop_string(ctx, -2, keys[i]); }
	puts("net open");
	return 0;
}
static duk_ret_t net_send(duk_context *ctx) {
	duk_size_t n;
	const unsigned char *p = get_bytes(ctx, 0, &n);
	if (halted) return 0;
	fputs("net send ", stdout); out_hex(p, n); putchar('\n');
	return 0;
}
static duk_ret_t net_close(duk_context *ctx) {
	(void) ctx;
	if (!halted) puts("net close");
	return 0;
}

/* ---- hal.clock ---- */
static duk_ret_t clock_now(duk_context *ctx) { duk_push_number(ctx, vclock); return 1; }
static duk_ret_t clock_set(duk_context *ctx) {
	double ms = duk_to_number(ctx, 1), id = next_timer_id++;
	if (!duk_is_callable(ctx, 0)) (void) duk_type_error(ctx, "setTimer: fn must be a function");
	if (!(ms > 0)) ms = 0;
	if (!halted) {
		if (ntimers == captimers) {
			size_t nc = captimers ? captimers * 2 : 16;
			vtimer *nt = (vtimer *) realloc(timers, nc * sizeof(vtimer));
			if (!nt) (void) duk_generic_error(ctx, "setTimer: out of host memory");
			timers = nt; captimers = nc;
		}
		timers[ntimers].due = vclock + ms;
		timers[ntimers++].id = id;
		duk_push_heap_stash(ctx);
		duk_get_prop_string(ctx, -1, "timers");
		duk_dup(ctx, 0);
		duk_put_prop_index(ctx, -2, (duk_uarridx_t) id);
	}
	duk_push_number(ctx, id);
	return 1;
}
static duk_ret_t clock_clear(duk_context *ctx) {
	double id = duk_to_number(ctx, 0);
	size_t i;
	for (i = 0; i < ntimers; i++) {
		if (timers[i].id != id) continue;
		timers[i] = timers[--ntimers];
		duk_push_heap_stash(ctx);
		duk_get_prop_string(ctx, -1, "timers");
		duk_del_prop_index(ctx, -1, (duk_uarridx_t) id);
		break;
	}
	return 0;
}

/* ---- hal.flash ---- */
static duk_ret_t flash_slot_size(duk_context *ctx) { duk_push_number(ctx, (double) slot_size); return 1; }
static duk_ret_t flash_read(duk_context *ctx) {
	size_t slot = get_index(ctx, 0, 1, "slot");
	size_t off = get_index(ctx, 1, (double) slot_size, "offset");
	size_t len = get_index(ctx, 2, (double) (slot_size - off), "length");
	push_u8(ctx, slots[slot] + off, len);
	return 1;
}
static duk_ret_t flash_write(duk_context *ctx) {
	size_t slot = get_index(ctx, 0, 1, "slot");
	size_t off = get_index(ctx, 1, (double) slot_size, "offset");
	duk_size_t n;
	const unsigned char *p = get_bytes(ctx, 2, &n);
	if (n > slot_size - off) (void) duk_range_error(ctx, "flash.write past the end of the slot");
	if (halted) return 0;
	memcpy(slots[slot] + off, p, n);
	printf("flash write %u %lu ", (unsigned) slot, (unsigned long) off); out_hex(p, n); putchar('\n');
	return 0;
}
static duk_ret_t flash_erase(duk_context *ctx) {
	size_t slot = get_index(ctx, 0, 1, "slot");
	if (halted) return 0;
	memset(slots[slot], 0xff, slot_size);
	printf("flash erase %u\n", (unsigned) slot);
	return 0;
}
static duk_ret_t flash_read_boot(duk_context *ctx) {
	if (boot_present) push_u8(ctx, boot_rec, boot_len); else duk_push_null(ctx);
	return 1;
}
static duk_ret_t flash_write_boot(duk_context *ctx) {
	duk_size_t n;
	const unsigned char *p = get_bytes(ctx, 0, &n);
	if (n > BOOT_MAX) (void) duk_range_error(ctx, "boot record over %d bytes", BOOT_MAX);
	if (halted) return 0;
	memcpy(boot_rec, p, n); boot_len = n; boot_present = 1;
	fputs("boot write ", stdout); out_hex(p, n); putchar('\n');
	return 0;
}

/* ---- hal.system ---- */
static duk_ret_t sys_mem_used(duk_context *ctx) { duk_push_number(ctx, (double) mem_cur); return 1; }
static duk_ret_t sys_mem_total(duk_context *ctx) { duk_push_number(ctx, (double) mem_cap); return 1; }
static duk_ret_t sys_reset_reason(duk_context *ctx) { duk_push_number(ctx, reset_reason); return 1; }
static duk_ret_t sys_battery(duk_context *ctx) { duk_push_number(ctx, battery); return 1; }
static duk_ret_t sys_sigstr(duk_context *ctx) { duk_push_number(ctx, sigstr); return 1; }
static duk_ret_t sys_reset(duk_context *ctx) {
	/* The reason (a RESET_REASONS code) goes to Node, which boots the next run with it. */
	double reason = duk_is_number(ctx, 0) ? duk_get_number(ctx, 0) : 0;
	if (!halted) { halted = 1; printf("reset %.0f\n", reason); }
	return 0;
}
static duk_ret_t sys_signal(duk_context *ctx) {
	if (!halted) printf("signal %d\n", duk_to_boolean(ctx, 0) ? 1 : 0);
	return 0;
}
static duk_ret_t sys_log(duk_context *ctx) {
	if (!halted) out_value(ctx, "log", 0);
	return 0;
}

typedef struct { const char *name; duk_c_function fn; duk_idx_t nargs; } fn_entry;
static void put_functions(duk_context *ctx, const char *objname, const fn_entry *f) {
	duk_push_object(ctx);
	for (; f->name; f++) { duk_push_c_function(ctx, f->fn, f->nargs); duk_put_prop_string(ctx, -2, f->name); }
	duk_put_prop_string(ctx, -2, objname);
}

/* Only ES5 globals and typed arrays survive; Duktape's extras (Duktape, CBOR,
 * Buffer, TextEncoder, performance, Proxy, Reflect, Symbol, ...) are deleted. */
static const char *const keep_globals[] = {
	"NaN", "Infinity", "undefined", "Object", "Function", "Array", "String", "Boolean", "Number",
	"Date", "RegExp", "Error", "EvalError", "RangeError", "ReferenceError", "SyntaxError",
	"TypeError", "URIError", "Math", "JSON", "parseInt", "parseFloat", "eval", "isNaN",
	"isFinite", "decodeURI", "decodeURIComponent", "encodeURI", "encodeURIComponent", "escape",
	"unescape", "ArrayBuffer", "DataView", "Int8Array", "Uint8Array", "Uint8ClampedArray",
	"Int16Array", "Uint16Array", "Int32Array", "Uint32Array", "Float32Array", "Float64Array", NULL
};
static void prune_globals(duk_context *ctx) {
	duk_uarridx_t n = 0, i;
	duk_push_global_object(ctx);
	duk_push_array(ctx);
	duk_enum(ctx, -2, DUK_ENUM_OWN_PROPERTIES_ONLY | DUK_ENUM_INCLUDE_NONENUMERABLE);
	while (duk_next(ctx, -1, 0)) {
		const char *k = duk_get_string(ctx, -1);
		const char *const *w = keep_globals;
		while (*w && (!k || strcmp(*w, k) != 0)) w++;
		if (*w) duk_pop(ctx); else duk_put_prop_index(ctx, -3, n++);
	}
	duk_pop(ctx);
	for (i = 0; i < n; i++) { duk_get_prop_index(ctx, -1, i); duk_del_prop(ctx, -3); }
	duk_pop_2(ctx);
}

static void setup(duk_context *ctx) {
	static const fn_entry net_fns[] = { { "open", net_open, 3 }, { "send", net_send, 1 }, { "close", net_close, 0 }, { NULL, NULL, 0 } };
	static const fn_entry clock_fns[] = { { "now", clock_now, 0 }, { "setTimer", clock_set, 2 }, { "clearTimer", clock_clear, 1 }, { NULL, NULL, 0 } };
	static const fn_entry flash_fns[] = { { "slotSize", flash_slot_size, 0 }, { "read", flash_read, 3 }, { "write", flash_write, 3 },
		{ "erase", flash_erase, 1 }, { "readBoot", flash_read_boot, 0 }, { "writeBoot", flash_write_boot, 1 }, { NULL, NULL, 0 } };
	static const fn_entry sys_fns[] = { { "memoryUsed", sys_mem_used, 0 }, { "memoryTotal", sys_mem_total, 0 },
		{ "resetReason", sys_reset_reason, 0 }, { "reset", sys_reset, 1 }, { "signal", sys_signal, 1 },
		{ "battery", sys_battery, 0 }, { "signalStrength", sys_sigstr, 0 }, { "log", sys_log, 1 }, { NULL, NULL, 0 } };
	prune_globals(ctx);
	duk_push_heap_stash(ctx);
	duk_push_object(ctx);
	duk_put_prop_string(ctx, -2, "timers");
	duk_pop(ctx);
	duk_push_global_object(ctx);
	duk_push_object(ctx);
	put_functions(ctx, "net", net_fns);
	put_functions(ctx, "clock", clock_fns);
	put_functions(ctx, "flash", flash_fns);
	put_functions(ctx, "system", sys_fns);
	duk_put_prop_string(ctx, -2, "hal");
	duk_pop(ctx);
}

/* ---- commands ---- */
static void cmd_tick(duk_context *ctx, double ms) {
	double target = vclock + (ms > 0 ? ms : 0);
	unsigned long fired = 0;
	while (!halted) {
		size_t i, best = ntimers;
		double id;
		for (i = 0; i < ntimers; i++) {
			if (timers[i].due > target) continue;
			if (best == ntimers || timers[i].due < timers[best].due ||
			    (timers[i].due == timers[best].due && timers[i].id < timers[best].id)) best = i;
		}
		if (best == ntimers) break;
		if (++fired > TIMERS_PER_TICK) { puts("uncaught tick: too many timers due, rest postponed"); break; }
		if (timers[best].due > vclock) vclock = timers[best].due;
		id = timers[best].id;
		timers[best] = timers[--ntimers];
		push_stashed(ctx, NULL, id);
		duk_push_heap_stash(ctx);
		duk_get_prop_string(ctx, -1, "timers");
		duk_del_prop_index(ctx, -1, (duk_uarridx_t) id);
		duk_pop_2(ctx);
		call_protected(ctx, 0);
	}
	if (target > vclock) vclock = target;
}

static void cmd_run(duk_context *ctx, const char *path) {
	FILE *f = fopen(path, "rb");
	char *src = NULL;
	long n = -1;
	if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (src = (char *) malloc((size_t) n + 1)) != NULL && fread(src, 1, (size_t) n, f) != (size_t) n) n = -1;
	if (f) fclose(f);
	if (!src || n < 0) { printf("error cannot read %s\n", path); free(src); return; }
	if (halted) { puts("error halted after reset"); free(src); return; }
	duk_push_string(ctx, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	if (duk_pcompile_lstring_filename(ctx, 0, src, (duk_size_t) n) != 0 || duk_pcall(ctx, 0) != DUK_EXEC_SUCCESS)
		out_value(ctx, "error", -1);
	duk_pop(ctx);
	free(src);
}

static void cmd_net_event(duk_context *ctx, const char *key, const unsigned char *data, long n) {
	if (halted) return;
	push_stashed(ctx, key, 0);
	if (!duk_is_callable(ctx, -1)) { duk_pop(ctx); return; }
	if (!strcmp(key, "onClose")) {     /* forget the link first: onClose may reopen */
		duk_push_heap_stash(ctx);
		duk_del_prop_string(ctx, -1, "onOpen");
		duk_del_prop_string(ctx, -1, "onData");
		duk_del_prop_string(ctx, -1, "onClose");
		duk_pop(ctx);
	}
	if (data) push_u8(ctx, data, (size_t) n);
	call_protected(ctx, data ? 1 : 0);
}

static int set_slot_size(size_t n) {
	int i;
	for (i = 0; i < 2; i++) {
		unsigned char *p = (unsigned char *) realloc(slots[i], n ? n : 1);
		if (!p) return -1;
		slots[i] = p;
		memset(p, 0xff, n);
	}
	slot_size = n;
	return 0;
}

int main(void) {
	duk_context *ctx;
	char *line = NULL;
	size_t linecap = 0;
	ssize_t len;
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	if (set_slot_size(slot_size)) return 1;
	arena_init();
	ctx = duk_create_heap(cnt_alloc, cnt_realloc, cnt_free, NULL, on_fatal);
	if (!ctx) { puts("fatal cannot create heap"); return 1; }
	setup(ctx);
	printf("ready %d %ld\n", (int) (sizeof(void *) * 8), (long) DUK_VERSION);
	fflush(stdout);
	while ((len = getline(&line, &linecap, stdin)) >= 0) {
		char *arg;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
		arg = strchr(line, ' ');
		if (arg) *arg++ = 0; else arg = line + len;
		if (!strcmp(line, "cap")) mem_cap = (size_t) strtod(arg, NULL);
		else if (!strcmp(line, "slotsize")) { if (set_slot_size((size_t) strtod(arg, NULL))) puts("error out of host memory"); }
		else if (!strcmp(line, "resetreason")) reset_reason = strtod(arg, NULL);
		else if (!strcmp(line, "battery")) battery = strtod(arg, NULL);
		else if (!strcmp(line, "sigstr")) sigstr = strtod(arg, NULL);
		else if (!strcmp(line, "flash")) {
			char *hex = strchr(arg, ' ');
			int slot = atoi(arg);
			long n = hex ? unhex(hex + 1) : -1;
			if (n < 0 || (slot != 0 && slot != 1) || (size_t) n > slot_size) puts("error bad flash preload");
			else { memset(slots[slot], 0xff, slot_size); memcpy(slots[slot], hex + 1, (size_t) n); }
		} else if (!strcmp(line, "boot")) {
			long n = unhex(arg);
			if (n < 0 || n > BOOT_MAX) puts("error bad boot record");
			else { memcpy(boot_rec, arg, (size_t) n); boot_len = (size_t) n; boot_present = 1; }
		} else if (!strcmp(line, "noboot")) boot_present = 0;
		else if (!strcmp(line, "run")) cmd_run(ctx, arg);
		else if (!strcmp(line, "open")) cmd_net_event(ctx, "onOpen", NULL, 0);
		else if (!strcmp(line, "close")) cmd_net_event(ctx, "onClose", NULL, 0);
		else if (!strcmp(line, "data")) {
			long n = unhex(arg);
			if (n < 0) puts("error bad hex"); else cmd_net_event(ctx, "onData", (unsigned char *) arg, n);
		} else if (!strcmp(line, "tick")) cmd_tick(ctx, strtod(arg, NULL));
		else if (!strcmp(line, "gc") || !strcmp(line, "mem")) {
			if (!strcmp(line, "gc")) { duk_gc(ctx, 0); duk_gc(ctx, 0); }
			printf("mem %lu %lu\n", (unsigned long) mem_cur, (unsigned long) mem_peak);
		} else if (!strcmp(line, "eval")) {
			size_t n = unescape(arg);
			if (duk_peval_lstring(ctx, arg, n) != 0) out_value(ctx, "error", -1);
			else out_value(ctx, "result", -1);
			duk_pop(ctx);
		} else if (!strcmp(line, "dump")) {
			int i;
			for (i = 0; i < 2; i++) { printf("dump slot %d ", i); out_hex(slots[i], slot_size); putchar('\n'); }
			if (boot_present) { fputs("dump boot ", stdout); out_hex(boot_rec, boot_len); putchar('\n'); }
			else puts("dump boot -");
		} else if (!strcmp(line, "quit")) break;
		else if (line[0]) printf("error unknown command %s\n", line);
		puts("ok");
		fflush(stdout);
	}
	duk_destroy_heap(ctx);
	printf("bye %lu\nok\n", (unsigned long) mem_cur);
	fflush(stdout);
	free(line); free(timers); free(slots[0]); free(slots[1]);
	return 0;
}
