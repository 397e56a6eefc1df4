/* cache.c - the response store over LMDB. This is the only file that
 * includes <lmdb.h> (the thin-wrapper habit of Knot Resolver's cdb_lmdb.c).
 *
 * One environment in [cache] dir with three named DBs:
 *   "objects"  32-byte key (SHA-256) -> record
 *   "lru"      8-byte big-endian stamp + 32-byte key -> empty; eviction order,
 *              oldest first. A stamp is microseconds since the epoch, kept
 *              strictly increasing within a process.
 *   "meta"     "version" (u32 LE: format of the store), "bytes" (u64 LE: sum
 *              of the sizes of the values in "objects"), "hits", "misses".
 *
 * A record is one value, all integers little-endian:
 *   0  u32 magic "HCR\x1a"      4  u16 format version   6  u16 zero
 *   8  u32 flags (CACHE_VARY)  12  u32 head_len        16  u64 body_len
 *  24  i64 request_time        32  i64 response_time   40  u64 stamp (us)
 *  48  u32 ident_len           52  u32 zero
 *  56  head bytes, body bytes, then the identity the record was stored for
 *      (cache_key.h: the encoding its key is the hash of);
 *      value size = 56 + head_len + body_len + ident_len.
 * A value whose magic, version, flags or lengths do not check out is treated
 * as absent; this process remembers its key and deletes it in its next write
 * transaction (a put of the same key replaces it anyway).
 *
 * Store format: "meta" version CACHE_FORMAT. A store of ours with an older
 * version is wiped by whoever opens it first (it is a cache); a newer or
 * unknown version, or records without a version, are refused with a message.
 *
 * Durability: MDB_NOSYNC. Every commit is atomic and reaches the OS page
 * cache, so a crash or SIGKILL of any process at any moment leaves a store
 * that opens with only complete transactions; a power loss or kernel crash may
 * lose recent transactions (acceptable for a cache, and far cheaper).
 *
 * Eviction (approximate LRU): usage is counted in LMDB pages, not value
 * bytes: the map minus its unused tail and minus free pages old enough to
 * reuse (map_pressure), and at least the pages of the three trees. When a put
 * would take usage above 85% of the map, records are deleted oldest stamp
 * first until usage plus the new record is at most 70%. Stamps move on use
 * (cache_touch) at most once a minute per record. If LMDB still reports
 * MDB_MAP_FULL (freed pages are reusable only by later transactions, and
 * overflow pages need contiguous runs), a separate transaction evicts down to
 * 50% (then commits a trivial transaction so the freed pages become
 * reusable) and the put is retried once; then it gives up and the object is
 * simply not stored. In tiny maps (1 MiB with 64 KiB objects) that fallback
 * runs on about one put in six; with objects small against the map, never.
 *
 * Map growth by another process (MDB_MAP_RESIZED) is adopted at the next
 * transaction, unless this process still holds read handles (remapping would
 * move the bytes they point to): that operation fails (logged) and the
 * resize is retried by the next one. */
#include "cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "cache_record.h"
#include "log.h"

#define HIGH_PCT 85
#define LOW_PCT 70
#define PANIC_PCT 50
#define TOUCH_AGE_US (60 * 1000000LL)
#define FLUSH_US 1000000LL
#define READER_CHECK_EVERY 1000
#define MAX_READERS 4096 /* every worker holds up to SPARE_READS + 128 (conn_cache.c) */
#define SPARE_READS 32 /* a hit keeps its read until the body is written */
#define DOOMED_MAX 16
#define ENV_FLAGS (MDB_NOTLS | MDB_NOSYNC | MDB_NORDAHEAD | MDB_NOMEMINIT)

/* A read transaction handed to a caller of cache_get; reset and kept for
 * reuse (mdb_txn_reset/mdb_txn_renew) when released. */
struct cache_read {
	struct cache *c;
	MDB_txn *txn;
	struct cache_read *next;
};

struct cache {
	MDB_env *env;
	MDB_dbi objects, lru, meta;
	char *dir;
	size_t mapsize;           /* current size of our map */
	size_t psize;
	size_t max_object;
	struct cache_read *spare; /* reset read transactions */
	unsigned nspare;
	unsigned nout;            /* read handles given out, not yet released */
	uint64_t writes;
	int64_t skew_us;
	int64_t last_stamp;
	uint64_t pend_hits, pend_misses;
	int64_t last_flush;       /* monotonic microseconds */
	uint8_t doomed[DOOMED_MAX][CACHE_KEY_LEN];
	unsigned ndoomed;
};

/* State of one write transaction: the running byte total and what it flushes. */
struct wtx {
	MDB_txn *txn;
	uint64_t bytes;
	uint64_t hits, misses;
	unsigned ndoomed;
};

/* The one place that turns an LMDB code (or errno) into a negative errno,
 * logging it with what we were doing. MDB_NOTFOUND is not an error. */
static int lmdb_error(const struct cache *c, const char *what, int rc)
{
	int err;
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		log_warn("cache %s: %s: %s", c ? c->dir : "-", what, mdb_strerror(rc));
		return -ENOSPC;
	case MDB_MAP_RESIZED:
	case MDB_READERS_FULL:
		err = -EAGAIN;
		break;
	case MDB_BAD_TXN:
	case MDB_BAD_VALSIZE:
	case MDB_BAD_DBI:
	case MDB_BAD_RSLOT:
		err = -EINVAL;
		break;
	case MDB_PANIC:
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_INCOMPATIBLE:
		err = -EIO;
		break;
	default:
		err = rc > 0 ? -rc : -EIO;
		break;
	}
	log_error("cache %s: %s: %s", c ? c->dir : "-", what, mdb_strerror(rc));
	return err;
}

/* Wall clock in microseconds, shifted by the test skew. */
static int64_t now_us(const struct cache *c)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + c->skew_us;
}

/* Monotonic clock in microseconds (counter flush pacing). */
static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A fresh LRU stamp: now, but strictly after the last one of this process. */
static int64_t stamp_next(struct cache *c)
{
	int64_t s = now_us(c);
	if (s <= c->last_stamp)
		s = c->last_stamp + 1;
	c->last_stamp = s;
	return s;
}

/* rec_decode of an LMDB value. */
static int val_decode(const MDB_val *v, struct cache_object *o, int64_t *stamp)
{
	return rec_decode(v->mv_data, v->mv_size, o, stamp);
}

/* Map bytes a value of vlen takes with its key and LRU entry (LMDB puts a
 * node larger than about half a page on its own overflow pages). */
static size_t rec_cost(const struct cache *c, size_t vlen)
{
	size_t node = 8 + CACHE_KEY_LEN + vlen;
	size_t lru = 8 + LRU_KEY_LEN + 2;
	if (node > c->psize / 2 - 32)
		return ((16 - 1 + vlen) / c->psize + 1) * c->psize + lru;
	return node + 2 + lru;
}

/* Read a u64 from "meta" (absent reads as 0). Returns an LMDB code. */
static int meta_get(struct cache *c, MDB_txn *txn, const char *name, uint64_t *v)
{
	MDB_val k = { strlen(name), (void *)(uintptr_t)name }, d;
	int rc = mdb_get(txn, c->meta, &k, &d);
	*v = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == 0 && d.mv_size == 8)
		*v = get_le64(d.mv_data);
	return rc;
}

/* Write a u64 into "meta". Returns an LMDB code. */
static int meta_put(struct cache *c, MDB_txn *txn, const char *name, uint64_t v)
{
	uint8_t buf[8];
	put_le64(buf, v);
	MDB_val k = { strlen(name), (void *)(uintptr_t)name }, d = { 8, buf };
	return mdb_put(txn, c->meta, &k, &d, 0);
}

/* Re-read the size of our map (after open or a resize). */
static void map_info(struct cache *c)
{
	MDB_envinfo info;
	MDB_stat st;
	mdb_env_info(c->env, &info);
	mdb_env_stat(c->env, &st);
	c->mapsize = info.me_mapsize;
	c->psize = st.ms_psize;
}

/* Another process grew the map beyond ours: adopt its size. Only while no
 * read handle is out, since remapping may move the bytes they point to. */
static int map_refresh(struct cache *c)
{
	if (c->nout > 0) {
		log_debug("cache %s: map grown elsewhere; resize deferred (%u reads out)", c->dir,
			  c->nout);
		return -1;
	}
	int rc = mdb_env_set_mapsize(c->env, 0);
	if (rc != 0) {
		lmdb_error(c, "adopting the grown map size", rc);
		return -1;
	}
	map_info(c);
	log_info("cache %s: map grown by another process, now %zu bytes", c->dir, c->mapsize);
	return 0;
}

/* Free the reader slots of dead processes (a SIGKILLed worker leaves one). */
static void readers_check(struct cache *c)
{
	int dead = 0;
	int rc = mdb_reader_check(c->env, &dead);
	if (rc != 0)
		lmdb_error(c, "checking readers", rc);
	else if (dead > 0)
		log_warn("cache %s: freed %d reader slot(s) of dead processes", c->dir, dead);
}

/* Begin a transaction, recovering from a map grown by another process and
 * from reader slots held by dead ones. Returns an LMDB code. */
static int txn_begin(struct cache *c, unsigned flags, MDB_txn **txn)
{
	int rc = MDB_SUCCESS;
	for (int tries = 0; tries < 3; tries++) {
		rc = mdb_txn_begin(c->env, NULL, flags, txn);
		if (rc == MDB_MAP_RESIZED) {
			if (map_refresh(c) != 0)
				return rc;
		} else if (rc == MDB_READERS_FULL) {
			int dead = 0;
			if (mdb_reader_check(c->env, &dead) != 0 || dead == 0)
				return rc;
		} else {
			return rc;
		}
	}
	return rc;
}

/* Take a read transaction: renew a spare reset one (cheap, no new reader
 * slot) or begin a new one. Returns 0 or a negative errno (logged). */
static int read_begin(struct cache *c, struct cache_read **out)
{
	struct cache_read *rd = c->spare;
	int rc;
	if (rd != NULL) {
		c->spare = rd->next;
		c->nspare--;
		rc = mdb_txn_renew(rd->txn);
		if (rc == MDB_SUCCESS)
			goto ok;
		mdb_txn_abort(rd->txn);
		rd->txn = NULL;
		if (rc != MDB_MAP_RESIZED && rc != MDB_READERS_FULL) {
			free(rd);
			return lmdb_error(c, "renewing a read transaction", rc);
		}
	} else {
		rd = calloc(1, sizeof(*rd));
		if (rd == NULL) {
			log_error("cache %s: out of memory", c->dir);
			return -ENOMEM;
		}
		rd->c = c;
	}
	rc = txn_begin(c, MDB_RDONLY, &rd->txn);
	if (rc != MDB_SUCCESS) {
		free(rd);
		return lmdb_error(c, "beginning a read transaction", rc);
	}
ok:
	rd->next = NULL;
	c->nout++;
	*out = rd;
	return 0;
}

void cache_release(struct cache_read *rd)
{
	if (rd == NULL)
		return;
	struct cache *c = rd->c;
	c->nout--;
	if (c->nspare < SPARE_READS) {
		mdb_txn_reset(rd->txn);
		rd->next = c->spare;
		c->spare = rd;
		c->nspare++;
		return;
	}
	mdb_txn_abort(rd->txn);
	free(rd);
}

/* Remember a key whose record is unreadable, to delete it at the next write. */
static void doom(struct cache *c, const uint8_t *key)
{
	for (unsigned i = 0; i < c->ndoomed; i++)
		if (memcmp(c->doomed[i], key, CACHE_KEY_LEN) == 0)
			return;
	if (c->ndoomed < DOOMED_MAX)
		memcpy(c->doomed[c->ndoomed++], key, CACHE_KEY_LEN);
}

/* Delete key's record and, if it was readable, its LRU entry; keep the byte
 * total. *found says whether there was one. Returns an LMDB code. */
static int rec_remove(struct cache *c, struct wtx *w, const uint8_t *key, int *found)
{
	MDB_val k = { CACHE_KEY_LEN, (void *)(uintptr_t)key }, v;
	struct cache_object o;
	int64_t stamp;
	*found = 0;
	int rc = mdb_get(w->txn, c->objects, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	*found = 1;
	size_t size = v.mv_size;
	if (val_decode(&v, &o, &stamp) == 0) {
		uint8_t lk[LRU_KEY_LEN];
		lru_key(lk, stamp, key);
		MDB_val l = { LRU_KEY_LEN, lk };
		rc = mdb_del(w->txn, c->lru, &l, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	rc = mdb_del(w->txn, c->objects, &k, NULL);
	if (rc != 0)
		return rc;
	w->bytes = w->bytes > size ? w->bytes - size : 0;
	return 0;
}

/* Begin a write transaction: load the byte total, delete records found
 * unreadable since the last write. Returns an LMDB code. */
static int w_begin(struct cache *c, struct wtx *w)
{
	memset(w, 0, sizeof(*w));
	int rc = txn_begin(c, 0, &w->txn);
	if (rc != 0)
		return rc;
	rc = meta_get(c, w->txn, "bytes", &w->bytes);
	for (unsigned i = 0; rc == 0 && i < c->ndoomed; i++) {
		MDB_val k = { CACHE_KEY_LEN, c->doomed[i] }, v;
		struct cache_object o;
		int64_t stamp;
		rc = mdb_get(w->txn, c->objects, &k, &v);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc == 0 && val_decode(&v, &o, &stamp) != 0) {
			size_t size = v.mv_size;
			rc = mdb_del(w->txn, c->objects, &k, NULL);
			w->bytes = w->bytes > size ? w->bytes - size : 0;
		}
	}
	w->ndoomed = c->ndoomed;
	if (rc != 0) {
		mdb_txn_abort(w->txn);
		w->txn = NULL;
	}
	return rc;
}

/* Commit a write transaction with the byte total and this process's pending
 * counters. The transaction is gone either way. Returns an LMDB code. */
static int w_commit(struct cache *c, struct wtx *w)
{
	uint64_t v;
	int rc = meta_put(c, w->txn, "bytes", w->bytes);
	w->hits = c->pend_hits;
	w->misses = c->pend_misses;
	if (rc == 0 && w->hits > 0 && (rc = meta_get(c, w->txn, "hits", &v)) == 0)
		rc = meta_put(c, w->txn, "hits", v + w->hits);
	if (rc == 0 && w->misses > 0 && (rc = meta_get(c, w->txn, "misses", &v)) == 0)
		rc = meta_put(c, w->txn, "misses", v + w->misses);
	if (rc != 0) {
		mdb_txn_abort(w->txn);
		w->txn = NULL;
		return rc;
	}
	rc = mdb_txn_commit(w->txn);
	w->txn = NULL;
	if (rc != 0)
		return rc;
	c->pend_hits -= w->hits;
	c->pend_misses -= w->misses;
	if (w->ndoomed > 0) {
		c->ndoomed -= w->ndoomed;
		memmove(c->doomed, c->doomed[w->ndoomed], (size_t)c->ndoomed * CACHE_KEY_LEN);
	}
	if (w->hits > 0 || w->misses > 0)
		c->last_flush = mono_us();
	if (++c->writes % READER_CHECK_EVERY == 0)
		readers_check(c);
	return 0;
}

/* Abort a write transaction if still open. */
static void w_abort(struct wtx *w)
{
	if (w->txn != NULL)
		mdb_txn_abort(w->txn);
	w->txn = NULL;
}

/* Map bytes used by our three trees as of this transaction, in pages. */
static int usage(struct cache *c, MDB_txn *txn, size_t *used)
{
	MDB_dbi dbis[3] = { c->objects, c->lru, c->meta };
	size_t pages = 4; /* two meta pages, the main DB, slack */
	for (int i = 0; i < 3; i++) {
		MDB_stat st;
		int rc = mdb_stat(txn, dbis[i], &st);
		if (rc != 0)
			return rc;
		pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
	}
	*used = pages * c->psize;
	return 0;
}

/* Bytes of the map not available to the next writer: the map minus its
 * unused tail and minus free pages old enough to reuse (LMDB reuses pages
 * freed by transaction T from T + 2 on, so a big eviction frees room only
 * two commits later). Read from a read snapshot; approximate (it ignores
 * readers of older snapshots in other processes). Returns 0 or -1. */
static int map_pressure(struct cache *c, size_t *used)
{
	struct cache_read *rd;
	MDB_cursor *cur = NULL;
	MDB_envinfo info;
	MDB_val k, v;
	if (read_begin(c, &rd) != 0)
		return -1;
	mdb_env_info(c->env, &info);
	size_t pages = c->mapsize / c->psize;
	size_t avail = pages > info.me_last_pgno + 1 ? pages - info.me_last_pgno - 1 : 0;
	size_t id = mdb_txn_id(rd->txn);
	int rc = mdb_cursor_open(rd->txn, 0, &cur); /* the free-page DB */
	while (rc == 0 && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		size_t txnid, count;
		if (k.mv_size != sizeof(txnid) || v.mv_size < sizeof(count))
			continue;
		memcpy(&txnid, k.mv_data, sizeof(txnid));
		memcpy(&count, v.mv_data, sizeof(count));
		if (txnid < id)
			avail += count;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (cur != NULL)
		mdb_cursor_close(cur);
	cache_release(rd);
	if (rc != 0) {
		lmdb_error(c, "reading the free-page list", rc);
		return -1;
	}
	*used = (pages > avail ? pages - avail : 0) * c->psize;
	return 0;
}

/* Delete records in LRU order (oldest stamp first) until the trees use at
 * most target bytes. LRU entries whose record is gone or has moved on are
 * dropped on the way. Returns an LMDB code. */
static int evict(struct cache *c, struct wtx *w, size_t target, unsigned *n)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(w->txn, c->lru, &cur);
	if (rc != 0)
		return rc;
	for (;;) {
		size_t used;
		MDB_val k, v;
		uint8_t lk[LRU_KEY_LEN];
		if ((rc = usage(c, w->txn, &used)) != 0 || used <= target)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc != 0)
			break;
		int ok = k.mv_size == LRU_KEY_LEN;
		if (ok)
			memcpy(lk, k.mv_data, LRU_KEY_LEN); /* k dies with the delete */
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		if (!ok)
			continue;
		MDB_val ok_key = { CACHE_KEY_LEN, lk + 8 }, ov;
		struct cache_object o;
		int64_t stamp;
		rc = mdb_get(w->txn, c->objects, &ok_key, &ov);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		if (val_decode(&ov, &o, &stamp) == 0 && stamp != (int64_t)get_be64(lk))
			continue; /* a stale entry: the record was touched since */
		size_t size = ov.mv_size;
		if ((rc = mdb_del(w->txn, c->objects, &ok_key, NULL)) != 0)
			break;
		w->bytes = w->bytes > size ? w->bytes - size : 0;
		(*n)++;
	}
	mdb_cursor_close(cur);
	return rc;
}

/* Evict down to pct% of the map in a transaction of its own, so that later
 * transactions can reuse the freed pages. Returns an LMDB code. */
static int evict_txn(struct cache *c, unsigned pct)
{
	struct wtx w;
	unsigned n = 0;
	int rc = w_begin(c, &w);
	if (rc != 0)
		return rc;
	rc = evict(c, &w, c->mapsize / 100 * pct, &n);
	if (rc != 0) {
		w_abort(&w);
		return rc;
	}
	rc = w_commit(c, &w);
	if (rc != 0)
		return rc;
	log_info("cache %s: evicted %u record(s) down to %u%% of the map", c->dir, n, pct);
	/* LMDB reuses pages freed by transaction T only from T + 2 on (it
	 * keeps the last two snapshots): commit a trivial one in between. */
	if ((rc = w_begin(c, &w)) != 0)
		return rc;
	return w_commit(c, &w);
}

/* One attempt at storing in one write transaction: drop the old record,
 * evict if above the high-water mark, insert record and LRU entry. Returns
 * an LMDB code (MDB_MAP_FULL when it did not fit). */
static int put_once(struct cache *c, const uint8_t *key, const struct cache_object *obj,
		    size_t vlen)
{
	struct wtx w;
	int found;
	unsigned n = 0;
	size_t used, pressure, cost = rec_cost(c, vlen);
	if (map_pressure(c, &pressure) != 0)
		pressure = 0; /* fall back to counting the trees only */
	int rc = w_begin(c, &w);
	if (rc != 0)
		return rc;
	if ((rc = rec_remove(c, &w, key, &found)) != 0 || (rc = usage(c, w.txn, &used)) != 0)
		goto fail;
	if (pressure < used)
		pressure = used;
	if (pressure + cost > c->mapsize / 100 * HIGH_PCT) {
		/* Free what takes us to the low-water mark, from the trees. */
		size_t need = pressure + cost - c->mapsize / 100 * LOW_PCT;
		rc = evict(c, &w, used > need ? used - need : 0, &n);
		if (rc != 0)
			goto fail;
		log_debug("cache %s: evicted %u record(s)", c->dir, n);
	}
	int64_t stamp = stamp_next(c);
	MDB_val k = { CACHE_KEY_LEN, (void *)(uintptr_t)key }, v = { vlen, NULL };
	if ((rc = mdb_put(w.txn, c->objects, &k, &v, MDB_RESERVE)) != 0)
		goto fail;
	uint8_t *p = v.mv_data;
	rec_header(p, obj, stamp);
	if (obj->head_len > 0)
		memcpy(p + REC_HDR, obj->head, obj->head_len);
	if (obj->body_len > 0)
		memcpy(p + REC_HDR + obj->head_len, obj->body, obj->body_len);
	if (obj->ident_len > 0)
		memcpy(p + REC_HDR + obj->head_len + obj->body_len, obj->ident, obj->ident_len);
	uint8_t lk[LRU_KEY_LEN];
	lru_key(lk, stamp, key);
	MDB_val l = { LRU_KEY_LEN, lk }, empty = { 0, NULL };
	if ((rc = mdb_put(w.txn, c->lru, &l, &empty, 0)) != 0)
		goto fail;
	w.bytes += vlen;
	return w_commit(c, &w);
fail:
	w_abort(&w);
	return rc;
}

int cache_put(struct cache *c, const uint8_t key[CACHE_KEY_LEN], const struct cache_object *obj)
{
	if (c == NULL)
		return 0;
	if (obj->body_len > c->max_object || obj->head_len > UINT32_MAX ||
	    obj->ident_len > UINT32_MAX || (obj->flags & ~REC_FLAGS_KNOWN) != 0)
		return 0;
	size_t vlen = REC_HDR + obj->head_len + obj->ident_len;
	if (obj->body_len > SIZE_MAX - vlen)
		return 0;
	vlen += obj->body_len;
	if (rec_cost(c, vlen) > c->mapsize / 100 * PANIC_PCT) {
		log_debug("cache %s: %zu-byte record too large for the map", c->dir, vlen);
		return 0;
	}
	int rc = put_once(c, key, obj, vlen);
	if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) {
		log_warn("cache %s: map full; evicting down to %d%% and retrying", c->dir, PANIC_PCT);
		rc = evict_txn(c, PANIC_PCT);
		if (rc == 0)
			rc = put_once(c, key, obj, vlen);
	}
	if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) {
		lmdb_error(c, "object not stored", rc);
		return 0;
	}
	if (rc != 0) {
		lmdb_error(c, "storing an object", rc);
		return -1;
	}
	return 1;
}

int cache_get(struct cache *c, const uint8_t key[CACHE_KEY_LEN], struct cache_object *obj,
	      struct cache_read **rdp)
{
	struct cache_read *rd;
	int64_t stamp;
	*rdp = NULL;
	if (c == NULL || read_begin(c, &rd) != 0)
		return -1;
	MDB_val k = { CACHE_KEY_LEN, (void *)(uintptr_t)key }, v;
	int rc = mdb_get(rd->txn, c->objects, &k, &v);
	if (rc == MDB_NOTFOUND) {
		cache_release(rd);
		return 0;
	}
	if (rc != 0) {
		cache_release(rd);
		lmdb_error(c, "reading an object", rc);
		return -1;
	}
	if (val_decode(&v, obj, &stamp) != 0) {
		cache_release(rd);
		log_debug("cache %s: unreadable record treated as absent", c->dir);
		doom(c, key);
		return 0;
	}
	*rdp = rd;
	return 1;
}

int cache_delete(struct cache *c, const uint8_t key[CACHE_KEY_LEN])
{
	struct wtx w;
	int found = 0;
	if (c == NULL)
		return -1;
	int rc = w_begin(c, &w);
	if (rc == 0 && (rc = rec_remove(c, &w, key, &found)) != 0)
		w_abort(&w);
	else if (rc == 0)
		rc = w_commit(c, &w);
	if (rc != 0) {
		lmdb_error(c, "deleting an object", rc);
		return -1;
	}
	return found;
}

/* Stamp of key's record as of txn, or -1 if absent or unreadable. */
static int64_t rec_stamp(struct cache *c, MDB_txn *txn, const uint8_t *key, MDB_val *v)
{
	MDB_val k = { CACHE_KEY_LEN, (void *)(uintptr_t)key };
	struct cache_object o;
	int64_t stamp;
	if (mdb_get(txn, c->objects, &k, v) != 0 || val_decode(v, &o, &stamp) != 0)
		return -1;
	return stamp;
}

void cache_touch(struct cache *c, const uint8_t key[CACHE_KEY_LEN])
{
	struct cache_read *rd;
	struct wtx w;
	MDB_val v;
	if (c == NULL || read_begin(c, &rd) != 0)
		return;
	int64_t now = now_us(c);
	int64_t old = rec_stamp(c, rd->txn, key, &v);
	cache_release(rd);
	if (old < 0 || now - old < TOUCH_AGE_US)
		return; /* the common case: no write */
	int rc = w_begin(c, &w);
	if (rc != 0) {
		lmdb_error(c, "touching an object", rc);
		return;
	}
	old = rec_stamp(c, w.txn, key, &v);
	if (old < 0 || now - old < TOUCH_AGE_US) {
		w_abort(&w);
		return;
	}
	/* Copy first: the put below may move or free the pages v points to. */
	uint8_t *copy = malloc(v.mv_size);
	if (copy == NULL) {
		w_abort(&w);
		log_error("cache %s: out of memory", c->dir);
		return;
	}
	memcpy(copy, v.mv_data, v.mv_size);
	int64_t stamp = stamp_next(c);
	put_le64(copy + 40, (uint64_t)stamp);
	uint8_t lk[LRU_KEY_LEN];
	lru_key(lk, old, key);
	MDB_val l = { LRU_KEY_LEN, lk }, empty = { 0, NULL };
	MDB_val k = { CACHE_KEY_LEN, (void *)(uintptr_t)key }, nv = { v.mv_size, copy };
	rc = mdb_del(w.txn, c->lru, &l, NULL);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc == 0)
		rc = mdb_put(w.txn, c->objects, &k, &nv, 0);
	lru_key(lk, stamp, key);
	if (rc == 0)
		rc = mdb_put(w.txn, c->lru, &l, &empty, 0);
	free(copy);
	if (rc != 0)
		w_abort(&w);
	else
		rc = w_commit(c, &w);
	if (rc != 0)
		lmdb_error(c, "touching an object", rc);
}

/* Write this process's pending hit/miss counts into "meta". */
static void counters_flush(struct cache *c)
{
	struct wtx w;
	if (c->pend_hits == 0 && c->pend_misses == 0)
		return;
	c->last_flush = mono_us();
	int rc = w_begin(c, &w);
	if (rc == 0)
		rc = w_commit(c, &w);
	if (rc != 0)
		lmdb_error(c, "writing counters", rc);
}

void cache_count(struct cache *c, uint64_t hits, uint64_t misses)
{
	if (c == NULL)
		return;
	c->pend_hits += hits;
	c->pend_misses += misses;
	if (mono_us() - c->last_flush >= FLUSH_US)
		counters_flush(c);
}

int cache_stats(struct cache *c, struct cache_stats *st)
{
	struct cache_read *rd;
	MDB_stat ms;
	memset(st, 0, sizeof(*st));
	if (c == NULL || read_begin(c, &rd) != 0)
		return -1;
	int rc = mdb_stat(rd->txn, c->objects, &ms);
	if (rc == 0)
		rc = meta_get(c, rd->txn, "bytes", &st->bytes);
	if (rc == 0)
		rc = meta_get(c, rd->txn, "hits", &st->hits);
	if (rc == 0)
		rc = meta_get(c, rd->txn, "misses", &st->misses);
	cache_release(rd);
	if (rc != 0) {
		lmdb_error(c, "reading statistics", rc);
		return -1;
	}
	st->entries = ms.ms_entries;
	st->hits += c->pend_hits;
	st->misses += c->pend_misses;
	st->map_size = c->mapsize;
	return 0;
}

/* Open the named DBs (creating them) and check the store's format version:
 * write it into a new store, wipe an older store of ours, refuse anything
 * else. Returns 0 or -1 with a message in err. */
static int store_init(struct cache *c, char *err, size_t errlen)
{
	MDB_txn *txn;
	MDB_stat ms;
	MDB_val k = { 7, (void *)(uintptr_t)"version" }, v;
	uint8_t buf[4];
	const char *what = "beginning a transaction";
	int rc = txn_begin(c, 0, &txn);
	if (rc != 0)
		goto lmdb_fail;
	what = "opening its databases";
	if ((rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &c->objects)) != 0 ||
	    (rc = mdb_dbi_open(txn, "lru", MDB_CREATE, &c->lru)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &c->meta)) != 0 ||
	    (rc = mdb_stat(txn, c->objects, &ms)) != 0)
		goto abort;
	what = "reading its format version";
	rc = mdb_get(txn, c->meta, &k, &v);
	if (rc == MDB_NOTFOUND && ms.ms_entries > 0) {
		snprintf(err, errlen, "cache dir %s: holds records but no format version: "
			 "not a hopcache store (empty the directory)", c->dir);
		mdb_txn_abort(txn);
		return -1;
	}
	if (rc == 0) {
		uint32_t ver = v.mv_size == 4 ? get_le32(v.mv_data) : 0;
		if (ver == CACHE_FORMAT) {
			/* commit, not abort: an abort would close the new DBI handles */
			if ((rc = mdb_txn_commit(txn)) != 0)
				goto lmdb_fail;
			return 0;
		}
		if (ver == 0 || ver > CACHE_FORMAT) {
			snprintf(err, errlen, "cache dir %s: store format version %u is unknown to "
				 "this hopcache (it writes %u): empty the directory or run a "
				 "matching hopcache", c->dir, ver, CACHE_FORMAT);
			mdb_txn_abort(txn);
			return -1;
		}
		log_warn("cache %s: store format %u is older than %u: wiping the cache", c->dir,
			 ver, CACHE_FORMAT);
		what = "wiping an older store";
		if ((rc = mdb_drop(txn, c->objects, 0)) != 0 || (rc = mdb_drop(txn, c->lru, 0)) != 0 ||
		    (rc = mdb_drop(txn, c->meta, 0)) != 0)
			goto abort;
	} else if (rc != MDB_NOTFOUND) {
		goto abort;
	}
	what = "writing its format version";
	put_le32(buf, CACHE_FORMAT);
	v.mv_size = 4;
	v.mv_data = buf;
	if ((rc = mdb_put(txn, c->meta, &k, &v, 0)) != 0)
		goto abort;
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto lmdb_fail;
	return 0;
abort:
	mdb_txn_abort(txn);
lmdb_fail:
	snprintf(err, errlen, "cache dir %s: %s: %s", c->dir, what, mdb_strerror(rc));
	return -1;
}

/* A hint for the errors a cache dir commonly has. */
static const char *open_hint(int rc)
{
	switch (rc) {
	case MDB_INVALID:
		return " (data.mdb is not an LMDB file: move it away or empty the directory)";
	case MDB_VERSION_MISMATCH:
		return " (written by an incompatible LMDB: empty the directory)";
	case EACCES:
	case EPERM:
		return " (check the owner and mode of the directory and its files)";
	case ENOENT:
		return " (the directory does not exist)";
	default:
		return "";
	}
}

/* Open the environment on dir. With strict (cache_prepare), a map smaller
 * than the data already stored is an error rather than silently grown.
 * Returns NULL with a message in err. */
static struct cache *env_open(const char *dir, size_t map_size, size_t max_object, int strict,
			      char *err, size_t errlen)
{
	struct cache *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->dir = strdup(dir)) == NULL) {
		snprintf(err, errlen, "cache dir %s: out of memory", dir);
		free(c);
		return NULL;
	}
	c->max_object = max_object;
	c->last_flush = mono_us();
	int rc = mdb_env_create(&c->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(c->env, 4);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(c->env, MAX_READERS);
	if (rc == 0)
		rc = mdb_env_set_mapsize(c->env, map_size);
	if (rc == 0)
		rc = mdb_env_open(c->env, dir, ENV_FLAGS, 0640);
	if (rc != 0) {
		snprintf(err, errlen, "cache dir %s: cannot open the LMDB store: %s%s", dir,
			 mdb_strerror(rc), open_hint(rc));
		goto fail;
	}
	map_info(c);
	if (strict) {
		MDB_envinfo info;
		mdb_env_info(c->env, &info);
		size_t data = ((size_t)info.me_last_pgno + 1) * c->psize;
		if (data > map_size) {
			snprintf(err, errlen, "cache dir %s: [cache] size %zu is smaller than the "
				 "data already in the store (%zu bytes): raise it or empty the "
				 "directory", dir, map_size, data);
			goto fail;
		}
	}
	readers_check(c);
	if (store_init(c, err, errlen) != 0)
		goto fail;
	return c;
fail:
	if (c->env != NULL)
		mdb_env_close(c->env);
	free(c->dir);
	free(c);
	return NULL;
}

/* mkdir -p with mode for each missing component; errors name the path. */
static int mkdir_p(const char *dir, mode_t mode, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof(path)) {
		snprintf(err, errlen, "cache dir \"%s\": empty or too long", dir);
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char saved = path[i];
		path[i] = '\0';
		if (stat(path, &st) != 0) {
			if (errno != ENOENT || (mkdir(path, mode) != 0 && errno != EEXIST) ||
			    stat(path, &st) != 0) {
				snprintf(err, errlen, "cache dir %s: cannot create %s: %s", dir,
					 path, strerror(errno));
				return -1;
			}
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "cache dir %s: %s is not a directory", dir, path);
			return -1;
		}
		path[i] = saved;
	}
	return 0;
}

int cache_prepare(const char *dir, size_t map_size, char *err, size_t errlen)
{
	if (mkdir_p(dir, 0750, err, errlen) != 0)
		return -1;
	if (access(dir, R_OK | W_OK | X_OK) != 0) {
		snprintf(err, errlen, "cache dir %s: %s (uid %d needs read, write and search "
			 "permission)", dir, strerror(errno), (int)geteuid());
		return -1;
	}
	struct cache *c = env_open(dir, map_size, 0, 1, err, errlen);
	if (c == NULL)
		return -1;
	cache_close(c);
	return 0;
}

struct cache *cache_open(const char *dir, size_t map_size, size_t max_object, char *err,
			 size_t errlen)
{
	return env_open(dir, map_size, max_object, 0, err, errlen);
}

void cache_close(struct cache *c)
{
	if (c == NULL)
		return;
	counters_flush(c);
	if (c->nout > 0)
		log_error("cache %s: closed with %u read handle(s) out", c->dir, c->nout);
	while (c->spare != NULL) {
		struct cache_read *rd = c->spare;
		c->spare = rd->next;
		mdb_txn_abort(rd->txn);
		free(rd);
	}
	mdb_env_close(c->env);
	free(c->dir);
	free(c);
}

void cache_set_clock_skew(struct cache *c, int64_t seconds)
{
	c->skew_us = seconds * 1000000;
}
