/* test_cache_key.c - the one key function (src/proto/cache_key.c), as a property
 * test with an oracle of its own.
 *
 * The test builds *logical* identities: a URI, a generation and, per Vary'd
 * name, either "absent" or a list of members (the value RFC 9111 §4.1 says
 * two requests must share, after combining field lines and dropping the
 * whitespace around commas). Two logical identities are the same exactly
 * when their parts are equal (names compared case-insensitively); that
 * comparison is the oracle, and it never looks at the code under test.
 *
 * Each logical identity is then rendered as request field lines in random
 * ways: members split over several lines or joined on one, the name's case
 * changed, unrelated fields interleaved, and for list fields (Accept-*)
 * random OWS around commas and at both ends; other fields (Cookie,
 * User-Agent, X-*) keep their bytes, so their members are joined by exactly
 * ", " (RFC 9110 §5.3 combining) and only line ends get OWS. The properties, over random inputs from 0 to 64 KiB with
 * long shared prefixes and delimiter characters (, ; = " : space tab) in
 * values:
 *   - two renderings of one identity give one key and one encoding;
 *   - identities that differ give different keys (and encodings), including
 *     the near misses a buggy key function confuses: a boundary moved
 *     between two values ("X-A: ab, X-B: c" vs "X-A: a, X-B: bc"), one byte
 *     changed far past any small buffer, absent vs empty, a member split.
 *
 * The seed is printed; HOPCACHE_SEED=N replays a run, HOPCACHE_ROUNDS=N
 * changes its length. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache_key.h"
#include "prng.h"

#define MAX_VARY 6
#define MAX_MEMBERS 8
#define MAX_FIELDS 128

/* A growable byte string. */
struct str {
	char *p;
	size_t len;
};

static void str_add(struct str *s, const char *p, size_t n)
{
	s->p = realloc(s->p, s->len + n + 1);
	assert_non_null(s->p);
	memcpy(s->p + s->len, p, n);
	s->len += n;
	s->p[s->len] = '\0';
}

static void str_addc(struct str *s, char ch)
{
	str_add(s, &ch, 1);
}

static struct str str_dup(const struct str *s)
{
	struct str d = { 0 };
	str_add(&d, s->p != NULL ? s->p : "", s->len);
	return d;
}

/* One Vary'd field of a logical identity. */
struct lvary {
	char name[32];
	bool present;
	size_t nmem;
	struct str mem[MAX_MEMBERS]; /* no ',', no OWS at either end */
};

struct logical {
	struct str uri;
	char gen[17];
	size_t nvary; /* 0: a primary identity */
	struct lvary v[MAX_VARY];
};

static const char *const name_pool[] = { "Cookie", "Accept-Language", "X-A", "X-B",
					 "Accept-Encoding", "User-Agent", "X-Long-Name" };

/* Does the key function treat this name as a comma list (OWS dropped)? */
static bool list_name(const char *name)
{
	return strncasecmp(name, "accept", 6) == 0;
}

/* Shared prefixes: most URIs and values start with one of these. */
static struct str prefixes[4];

static void make_prefixes(void)
{
	static const size_t lens[4] = { 0, 511, 2047, 40000 };
	for (size_t i = 0; i < 4; i++) {
		prefixes[i].len = 0;
		str_add(&prefixes[i], "", 0);
		for (size_t k = 0; k < lens[i]; k++)
			str_addc(&prefixes[i], (char)('a' + (k * 7 + i) % 26));
	}
}

/* A member: visible characters and delimiters, inner spaces allowed, never
 * ',' and never OWS at its ends. */
static void random_member(struct str *m)
{
	static const char alpha[] = "abcXYZ019;=\":/?&%-._~ \t";
	m->len = 0;
	str_add(m, "", 0);
	if (rnd_below(3) == 0) {
		const struct str *pre = &prefixes[rnd_below(4)];
		str_add(m, pre->p, pre->len);
	}
	size_t n = rnd_below(4) == 0 ? rnd_below(3000) : rnd_below(12);
	for (size_t i = 0; i < n; i++)
		str_addc(m, alpha[rnd_below(sizeof(alpha) - 1)]);
	while (m->len > 0 && (m->p[m->len - 1] == ' ' || m->p[m->len - 1] == '\t'))
		m->len--;
	size_t lead = 0;
	while (lead < m->len && (m->p[lead] == ' ' || m->p[lead] == '\t'))
		lead++;
	memmove(m->p, m->p + lead, m->len - lead);
	m->len -= lead;
	m->p[m->len] = '\0';
}

static void random_logical(struct logical *l)
{
	memset(l, 0, sizeof(*l));
	str_add(&l->uri, "http://example.com/", 19);
	const struct str *pre = &prefixes[rnd_below(4)];
	str_add(&l->uri, pre->p, pre->len);
	size_t tail = rnd_below(5) == 0 ? rnd_below(64 * 1024 - l->uri.len) : rnd_below(20);
	for (size_t i = 0; i < tail; i++)
		str_addc(&l->uri, "abc/?=&%"[rnd_below(8)]);
	snprintf(l->gen, sizeof(l->gen), "%016llx", (unsigned long long)(rnd() & 0xf));
	l->nvary = rnd_below(MAX_VARY + 1);
	for (size_t i = 0; i < l->nvary; i++) {
		struct lvary *v = &l->v[i];
		snprintf(v->name, sizeof(v->name), "%s", name_pool[rnd_below(7)]);
		v->present = rnd_below(5) != 0;
		v->nmem = v->present ? 1 + rnd_below(MAX_MEMBERS) : 0;
		for (size_t k = 0; k < v->nmem; k++) {
			random_member(&v->mem[k]);
			/* a line ending in ", " cannot be sent (ends are trimmed):
			 * an empty member of a non-list field only stands alone */
			if (!list_name(v->name) && v->nmem > 1 && v->mem[k].len == 0)
				str_addc(&v->mem[k], 'e');
		}
	}
}

static void free_logical(struct logical *l)
{
	free(l->uri.p);
	for (size_t i = 0; i < MAX_VARY; i++)
		for (size_t k = 0; k < MAX_MEMBERS; k++)
			free(l->v[i].mem[k].p);
}

static void copy_logical(struct logical *d, const struct logical *s)
{
	memcpy(d, s, sizeof(*d));
	d->uri = str_dup(&s->uri);
	for (size_t i = 0; i < MAX_VARY; i++)
		for (size_t k = 0; k < MAX_MEMBERS; k++)
			d->v[i].mem[k] = (struct str){ 0 };
	for (size_t i = 0; i < s->nvary; i++)
		for (size_t k = 0; k < s->v[i].nmem; k++)
			d->v[i].mem[k] = str_dup(&s->v[i].mem[k]);
}

/* The oracle: the same identity? */
static bool same_logical(const struct logical *a, const struct logical *b)
{
	if (a->uri.len != b->uri.len || memcmp(a->uri.p, b->uri.p, a->uri.len) != 0 ||
	    a->nvary != b->nvary)
		return false;
	if (a->nvary > 0 && strcmp(a->gen, b->gen) != 0)
		return false;
	for (size_t i = 0; i < a->nvary; i++) {
		const struct lvary *x = &a->v[i], *y = &b->v[i];
		if (strcasecmp(x->name, y->name) != 0 || x->present != y->present)
			return false;
		/* the combined value: members joined by "," */
		struct str jx = { 0 }, jy = { 0 };
		str_add(&jx, "", 0);
		str_add(&jy, "", 0);
		for (size_t k = 0; k < x->nmem; k++) {
			if (k)
				str_addc(&jx, ',');
			str_add(&jx, x->mem[k].p, x->mem[k].len);
		}
		for (size_t k = 0; k < y->nmem; k++) {
			if (k)
				str_addc(&jy, ',');
			str_add(&jy, y->mem[k].p, y->mem[k].len);
		}
		bool eq = jx.len == jy.len && memcmp(jx.p, jy.p, jx.len) == 0;
		free(jx.p);
		free(jy.p);
		if (!eq)
			return false;
	}
	return true;
}

static const char *ows(void)
{
	static const char *const w[] = { "", "", " ", "\t", "  ", " \t " };
	return w[rnd_below(6)];
}

/* Render: request fields (into bufs, which own the bytes) for l. */
struct rendering {
	struct http_field f[MAX_FIELDS];
	size_t n;
	struct str bufs[MAX_FIELDS * 2];
	size_t nbufs;
	char names[MAX_VARY][32];
};

static struct slice keep_str(struct rendering *r, struct str s)
{
	assert_true(r->nbufs < MAX_FIELDS * 2);
	r->bufs[r->nbufs++] = s;
	return slice_make(s.p, s.len);
}

static void add_field(struct rendering *r, const char *name, struct str value)
{
	assert_true(r->n < MAX_FIELDS);
	struct str nm = { 0 };
	str_add(&nm, name, strlen(name));
	r->f[r->n].name = keep_str(r, nm);
	r->f[r->n].value = keep_str(r, value);
	r->n++;
}

static void render(const struct logical *l, struct rendering *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < l->nvary; i++) {
		/* the name as the response's Vary lists it: any case */
		snprintf(r->names[i], sizeof(r->names[i]), "%s", l->v[i].name);
		for (char *p = r->names[i]; *p; p++)
			if (rnd_below(2))
				*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32
					    : *p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	}
	/* Lines of every Vary'd name (a name listed twice renders once: the
	 * lines are the request's, shared by both listings). */
	for (size_t i = 0; i < l->nvary; i++) {
		const struct lvary *v = &l->v[i];
		bool earlier = false;
		for (size_t j = 0; j < i; j++)
			earlier = earlier || strcasecmp(l->v[j].name, v->name) == 0;
		if (earlier || !v->present) {
			if (rnd_below(3) == 0) {
				struct str noise = { 0 };
				str_add(&noise, "noise", 5);
				add_field(r, "X-Unrelated", noise);
			}
			continue;
		}
		size_t k = 0;
		while (k < v->nmem) {
			size_t take = 1 + rnd_below(v->nmem - k);
			struct str line = { 0 };
			str_add(&line, ows(), 0);
			const char *w = ows();
			str_add(&line, w, strlen(w));
			bool list = list_name(v->name);
			for (size_t m = 0; m < take; m++) {
				if (m && !list) {
					str_add(&line, ", ", 2);
				} else if (m) {
					w = ows();
					str_add(&line, w, strlen(w));
					str_addc(&line, ',');
					w = ows();
					str_add(&line, w, strlen(w));
				}
				str_add(&line, v->mem[k + m].p, v->mem[k + m].len);
			}
			w = ows();
			str_add(&line, w, strlen(w));
			char lname[32];
			snprintf(lname, sizeof(lname), "%s", v->name);
			if (rnd_below(2))
				for (char *p = lname; *p; p++)
					*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
			add_field(r, lname, line);
			if (rnd_below(4) == 0) {
				struct str noise = { 0 };
				str_add(&noise, "a, b", 4);
				add_field(r, "X-Other", noise);
			}
			k += take;
		}
	}
}

/* A name listed twice must carry the same value both times in a logical
 * identity (it is one request field); make it so. */
static void unify_names(struct logical *l)
{
	for (size_t i = 0; i < l->nvary; i++)
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(l->v[j].name, l->v[i].name) == 0) {
				for (size_t k = 0; k < MAX_MEMBERS; k++)
					free(l->v[i].mem[k].p);
				struct lvary *v = &l->v[i];
				char keep[32];
				snprintf(keep, sizeof(keep), "%s", v->name);
				v->present = l->v[j].present;
				v->nmem = l->v[j].nmem;
				for (size_t k = 0; k < MAX_MEMBERS; k++)
					v->mem[k] = (struct str){ 0 };
				for (size_t k = 0; k < v->nmem; k++)
					v->mem[k] = str_dup(&l->v[j].mem[k]);
				snprintf(v->name, sizeof(v->name), "%s", keep);
				break;
			}
}

static void free_rendering(struct rendering *r)
{
	for (size_t i = 0; i < r->nbufs; i++)
		free(r->bufs[i].p);
}

/* Key and encoding of a rendering. */
static void key_of(const struct logical *l, struct rendering *r, struct cache_ident *id,
		   uint8_t key[CACHE_KEY_LEN])
{
	struct slice names[MAX_VARY];
	for (size_t i = 0; i < l->nvary; i++)
		names[i] = slice_make(r->names[i], strlen(r->names[i]));
	struct cache_key_input in = {
		.method_class = SLICE_LIT("GET"),
		.uri = slice_make(l->uri.p, l->uri.len),
		.generation = slice_make(l->gen, strlen(l->gen)),
		.vary_names = names,
		.nvary = l->nvary,
		.req = r->f,
		.nreq = r->n,
	};
	assert_int_equal(cache_key_make(&in, id, key), 0);
}

/* Mutate b (a copy of a) into a near miss. Returns a short description. */
static const char *mutate(struct logical *b)
{
	for (int tries = 0; tries < 20; tries++) {
		switch (rnd_below(7)) {
		case 0: /* one URI byte changed, anywhere (often far past 512) */
			if (b->uri.len > 19) {
				size_t at = 19 + rnd_below(b->uri.len - 19);
				b->uri.p[at] = b->uri.p[at] == 'Z' ? 'Y' : 'Z';
				return "uri byte changed";
			}
			break;
		case 1: /* a byte appended to the URI */
			str_addc(&b->uri, 'q');
			return "uri extended";
		case 2: /* boundary moved between two adjacent present values */
			for (size_t i = 0; i + 1 < b->nvary; i++) {
				struct lvary *x = &b->v[i], *y = &b->v[i + 1];
				if (strcasecmp(x->name, y->name) == 0 || !x->present || !y->present)
					continue;
				struct str *last = &x->mem[x->nmem - 1];
				if (last->len == 0 || last->p[last->len - 1] == ' ' ||
				    last->p[last->len - 1] == '\t')
					continue;
				bool later = false; /* y's name must not be listed again */
				for (size_t j = 0; j < b->nvary; j++)
					later = later || (j != i + 1 &&
							  strcasecmp(b->v[j].name, y->name) == 0);
				if (later)
					continue;
				char ch = last->p[--last->len];
				while (last->len > 0 && (last->p[last->len - 1] == ' ' ||
							 last->p[last->len - 1] == '\t'))
					last->len--; /* keep the member well formed */
				struct str moved = { 0 };
				str_addc(&moved, ch);
				str_add(&moved, y->mem[0].p, y->mem[0].len);
				free(y->mem[0].p);
				y->mem[0] = moved;
				return "boundary moved";
			}
			break;
		case 3: /* one byte of a value changed */
			for (size_t i = 0; i < b->nvary; i++) {
				struct lvary *x = &b->v[i];
				for (size_t k = 0; k < x->nmem; k++)
					if (x->mem[k].len > 0 && x->mem[k].p[x->mem[k].len - 1] != 'Q') {
						x->mem[k].p[x->mem[k].len - 1] = 'Q';
						return "value byte changed";
					}
			}
			break;
		case 4: /* absent <-> present and empty */
			for (size_t i = 0; i < b->nvary; i++) {
				struct lvary *x = &b->v[i];
				if (!x->present) {
					x->present = true;
					x->nmem = 1;
					x->mem[0].len = 0;
					str_add(&x->mem[0], "", 0);
					return "absent -> empty";
				}
				if (x->nmem == 1 && x->mem[0].len == 0) {
					x->present = false;
					x->nmem = 0;
					return "empty -> absent";
				}
			}
			break;
		case 5: /* a member split in two (a comma inserted) */
			for (size_t i = 0; i < b->nvary; i++) {
				struct lvary *x = &b->v[i];
				if (x->present && x->nmem < MAX_MEMBERS && list_name(x->name)) {
					str_add(&x->mem[x->nmem], "", 0);
					x->mem[x->nmem].len = 0;
					x->nmem++;
					return "empty member appended";
				}
			}
			break;
		case 6: /* another generation */
			if (b->nvary > 0) {
				b->gen[15] = b->gen[15] == 'f' ? 'e' : 'f';
				return "generation changed";
			}
			break;
		}
	}
	str_addc(&b->uri, 'x');
	return "uri extended";
}

static void check_pair(const struct logical *a, const struct logical *b, const char *what,
		       unsigned round, uint64_t seed)
{
	struct rendering ra, rb;
	struct cache_ident ia = { 0 }, ib = { 0 };
	uint8_t ka[CACHE_KEY_LEN], kb[CACHE_KEY_LEN];
	render(a, &ra);
	render(b, &rb);
	key_of(a, &ra, &ia, ka);
	key_of(b, &rb, &ib, kb);
	bool same = same_logical(a, b);
	bool same_key = memcmp(ka, kb, CACHE_KEY_LEN) == 0;
	bool same_enc = ia.len == ib.len && memcmp(ia.p, ib.p, ia.len) == 0;
	if (same != same_key || same != same_enc)
		fail_msg("seed %llu round %u (%s): identities %s but keys %s, encodings %s",
			 (unsigned long long)seed, round, what, same ? "equal" : "differ",
			 same_key ? "equal" : "differ", same_enc ? "equal" : "differ");
	free_rendering(&ra);
	free_rendering(&rb);
	cache_ident_free(&ia);
	cache_ident_free(&ib);
}

static void test_key_property(void **state)
{
	(void)state;
	uint64_t seed;
	unsigned rounds = prng_start("test_cache_key", 400, &seed);
	make_prefixes();
	unsigned differ = 0, equal = 0;
	for (unsigned round = 0; round < rounds; round++) {
		struct logical a, b, c;
		random_logical(&a);
		unify_names(&a);
		/* the same identity, rendered twice */
		copy_logical(&b, &a);
		check_pair(&a, &b, "re-rendered", round, seed);
		equal++;
		/* a near miss */
		const char *what = mutate(&b);
		unify_names(&b);
		check_pair(&a, &b, what, round, seed);
		differ += !same_logical(&a, &b);
		/* an unrelated identity (often sharing a long prefix) */
		random_logical(&c);
		unify_names(&c);
		check_pair(&a, &c, "independent", round, seed);
		free_logical(&a);
		free_logical(&b);
		free_logical(&c);
	}
	/* the generator must really produce both kinds */
	assert_true(differ > rounds / 2);
	assert_true(equal == rounds);
	for (size_t i = 0; i < 4; i++)
		free(prefixes[i].p);
}

/* The examples the issue names, written out. */
static void key_of_fields(const char *const *nv, size_t n, const char *const *vary, size_t nvary,
			  uint8_t key[CACHE_KEY_LEN])
{
	struct http_field f[8];
	struct slice names[8];
	for (size_t i = 0; i < n; i++) {
		f[i].name = slice_make(nv[2 * i], strlen(nv[2 * i]));
		f[i].value = slice_make(nv[2 * i + 1], strlen(nv[2 * i + 1]));
	}
	for (size_t i = 0; i < nvary; i++)
		names[i] = slice_make(vary[i], strlen(vary[i]));
	struct cache_ident id = { 0 };
	struct cache_key_input in = { .method_class = SLICE_LIT("GET"),
				      .uri = SLICE_LIT("http://example.com/"),
				      .generation = SLICE_LIT("0123456789abcdef"),
				      .vary_names = names,
				      .nvary = nvary,
				      .req = f,
				      .nreq = n };
	assert_int_equal(cache_key_make(&in, &id, key), 0);
	cache_ident_free(&id);
}

static void test_key_examples(void **state)
{
	(void)state;
	static const char *const ab[] = { "X-A", "X-B" };
	uint8_t k1[CACHE_KEY_LEN], k2[CACHE_KEY_LEN], k3[CACHE_KEY_LEN], k4[CACHE_KEY_LEN];
	const char *f1[] = { "X-A", "ab", "X-B", "c" }, *f2[] = { "X-A", "a", "X-B", "bc" };
	key_of_fields(f1, 2, ab, 2, k1);
	key_of_fields(f2, 2, ab, 2, k2);
	assert_memory_not_equal(k1, k2, CACHE_KEY_LEN);
	/* a list field: split vs joined lines, OWS around commas, name case */
	const char *f3[] = { "accept-language", "de , en", "Accept-Language", "fr" },
		   *f4[] = { "Accept-Language", "de,en,fr" };
	static const char *const al[] = { "ACCEPT-language" };
	key_of_fields(f3, 2, al, 1, k3);
	key_of_fields(f4, 1, al, 1, k4);
	assert_memory_equal(k3, k4, CACHE_KEY_LEN);
	/* any other field keeps its bytes: the space after a comma counts */
	const char *u1[] = { "User-Agent", "Mozilla/5.0 (KHTML, like Gecko)" },
		   *u2[] = { "User-Agent", "Mozilla/5.0 (KHTML,like Gecko)" };
	static const char *const ua[] = { "User-Agent" };
	key_of_fields(u1, 1, ua, 1, k3);
	key_of_fields(u2, 1, ua, 1, k4);
	assert_memory_not_equal(k3, k4, CACHE_KEY_LEN);
	/* ... but its field lines combine as RFC 9110 §5.3 says */
	const char *x1[] = { "X-A", "p", "x-a", "q" }, *x2[] = { "X-A", "p, q" };
	static const char *const a[] = { "x-A" };
	key_of_fields(x1, 2, a, 1, k3);
	key_of_fields(x2, 1, a, 1, k4);
	assert_memory_equal(k3, k4, CACHE_KEY_LEN);
	/* absent differs from present and empty */
	const char *f5[] = { "X-Other", "1" }, *f6[] = { "X-A", "" };
	key_of_fields(f5, 1, a, 1, k1);
	key_of_fields(f6, 1, a, 1, k2);
	assert_memory_not_equal(k1, k2, CACHE_KEY_LEN);
}

/* The normalised URI: no limit on its length, scheme and host lower-cased,
 * the default port dropped, "/" before a bare query. */
static void test_uri_normal(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} rows[] = {
		{ "HTTP://Example.COM/A?B", "http://example.com/A?B" },
		{ "http://example.com:80/x", "http://example.com/x" },
		{ "https://example.com:443/x", "https://example.com/x" },
		{ "http://example.com:8080/x", "http://example.com:8080/x" },
		{ "https://[::1]:8443/", "https://[::1]:8443/" },
		{ "http://example.com?q", "http://example.com/?q" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct http_target t;
		assert_int_equal(http_parse_target(SLICE_LIT("GET"),
						   slice_make(rows[i].in, strlen(rows[i].in)), &t),
				 0);
		size_t len;
		char *u = cache_uri_normal(&t, &len);
		assert_non_null(u);
		assert_string_equal(u, rows[i].want);
		assert_int_equal(len, strlen(rows[i].want));
		free(u);
	}
	/* 100 KB: kept whole */
	size_t n = 100000;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memcpy(big, "http://example.com/", 19);
	for (size_t i = 19; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	struct http_target t;
	assert_int_equal(http_parse_target(SLICE_LIT("GET"), slice_make(big, n), &t), 0);
	size_t len;
	char *u = cache_uri_normal(&t, &len);
	assert_non_null(u);
	assert_int_equal(len, n);
	assert_memory_equal(u, big, n);
	free(u);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_examples),
		cmocka_unit_test(test_uri_normal),
		cmocka_unit_test(test_key_property),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
