/* negotiate.c - Kerberos proxy authentication (RFC 4559) through MIT
 * krb5's GSS-API (negotiate.h). */
#include "negotiate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5.h>
#include <openssl/evp.h>

#include "auth.h"

struct negotiate_keytab {
	krb5_context ctx;
	krb5_keytab kt;  /* the MEMORY: copy */
	char name[64];   /* its name: "MEMORY:hopcache-PID-N" */
	char *principals;
};

static void set_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* krb5's message for code (its own text, or strerror). */
static void krb5_err(krb5_context ctx, krb5_error_code code, char *out, size_t len)
{
	const char *m = krb5_get_error_message(ctx, code);
	snprintf(out, len, "%s", m != NULL ? m : "unknown Kerberos error");
	krb5_free_error_message(ctx, m);
}

/* Does the unparsed principal name match the [auth] principal filter: the
 * same name, or the same without its realm when the filter has none? */
static bool principal_match(const char *name, const char *want)
{
	if (want == NULL)
		return true;
	if (strcmp(name, want) == 0)
		return true;
	size_t wl = strlen(want);
	return strchr(want, '@') == NULL && strncmp(name, want, wl) == 0 && name[wl] == '@';
}

/* Append name to the comma-separated list unless it is there already. */
static int principals_add(char **list, const char *name)
{
	size_t nl = strlen(name), ol = *list != NULL ? strlen(*list) : 0;
	for (const char *p = *list; p != NULL && *p != '\0';) {
		const char *e = strstr(p, ", ");
		size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
		if (l == nl && memcmp(p, name, nl) == 0)
			return 0;
		p = e != NULL ? e + 2 : p + l;
	}
	char *n = realloc(*list, ol + (ol ? 2 : 0) + nl + 1);
	if (n == NULL)
		return -1;
	if (ol)
		memcpy(n + ol, ", ", 2), ol += 2;
	memcpy(n + ol, name, nl + 1);
	*list = n;
	return 0;
}

/* Copy the matching entries of file into kt->kt. 0, or -1 with err. */
static int copy_keys(struct negotiate_keytab *kt, krb5_keytab file, const char *path,
		     const char *principal, char *err, size_t errlen)
{
	krb5_kt_cursor cur;
	krb5_keytab_entry e;
	char m[256];
	krb5_error_code rc = krb5_kt_start_seq_get(kt->ctx, file, &cur);
	if (rc != 0) {
		krb5_err(kt->ctx, rc, m, sizeof(m));
		set_err(err, errlen, "%s: cannot read the keytab: %s", path, m);
		return -1;
	}
	int st = 0;
	while (st == 0 && (rc = krb5_kt_next_entry(kt->ctx, file, &e, &cur)) == 0) {
		char *name = NULL;
		if (krb5_unparse_name(kt->ctx, e.principal, &name) != 0) {
			set_err(err, errlen, "%s: a key with an unprintable principal name", path);
			st = -1;
		} else if (principal_match(name, principal)) {
			if ((rc = krb5_kt_add_entry(kt->ctx, kt->kt, &e)) != 0) {
				krb5_err(kt->ctx, rc, m, sizeof(m));
				set_err(err, errlen, "%s: cannot copy a key of %s: %s", path, name, m);
				st = -1;
			} else if (principals_add(&kt->principals, name) < 0) {
				set_err(err, errlen, "%s: out of memory", path);
				st = -1;
			}
		}
		krb5_free_unparsed_name(kt->ctx, name);
		krb5_free_keytab_entry_contents(kt->ctx, &e);
	}
	krb5_kt_end_seq_get(kt->ctx, file, &cur);
	if (st == 0 && rc != KRB5_KT_END) {
		krb5_err(kt->ctx, rc, m, sizeof(m));
		set_err(err, errlen, "%s: cannot read the keytab: %s", path, m);
		st = -1;
	}
	if (st == 0 && kt->principals == NULL) {
		if (principal != NULL)
			set_err(err, errlen, "%s: no key of principal \"%s\" (see [auth] principal)", path,
				principal);
		else
			set_err(err, errlen, "%s: the keytab holds no key", path);
		st = -1;
	}
	return st;
}

struct negotiate_keytab *negotiate_keytab_load(const char *path, const char *principal, char *err,
					       size_t errlen)
{
	static unsigned generation;
	char m[256];
	/* krb5 would take a missing file for an empty keytab: say which */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	close(fd);
	struct negotiate_keytab *kt = calloc(1, sizeof(*kt));
	if (kt == NULL) {
		set_err(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	krb5_error_code rc = krb5_init_context(&kt->ctx);
	if (rc != 0) {
		set_err(err, errlen, "%s: cannot initialise Kerberos (error %d): check KRB5_CONFIG",
			path, (int)rc);
		free(kt);
		return NULL;
	}
	snprintf(kt->name, sizeof(kt->name), "MEMORY:hopcache-%ld-%u", (long)getpid(), ++generation);
	char fname[4096 + 6];
	if (strlen(path) > 4096) {
		set_err(err, errlen, "%s: the path is longer than 4096 bytes", path);
		negotiate_keytab_free(kt);
		return NULL;
	}
	snprintf(fname, sizeof(fname), "FILE:%s", path);
	krb5_keytab file = NULL;
	if ((rc = krb5_kt_resolve(kt->ctx, fname, &file)) != 0 ||
	    (rc = krb5_kt_resolve(kt->ctx, kt->name, &kt->kt)) != 0) {
		krb5_err(kt->ctx, rc, m, sizeof(m));
		set_err(err, errlen, "%s: %s", path, m);
		if (file != NULL)
			krb5_kt_close(kt->ctx, file);
		negotiate_keytab_free(kt);
		return NULL;
	}
	int st = copy_keys(kt, file, path, principal, err, errlen);
	krb5_kt_close(kt->ctx, file);
	if (st < 0) {
		negotiate_keytab_free(kt);
		return NULL;
	}
	return kt;
}

const char *negotiate_keytab_principals(const struct negotiate_keytab *kt)
{
	return kt->principals;
}

void negotiate_keytab_free(struct negotiate_keytab *kt)
{
	if (kt == NULL)
		return;
	if (kt->kt != NULL)
		krb5_kt_close(kt->ctx, kt->kt); /* the last handle: the keys go */
	krb5_free_context(kt->ctx);
	free(kt->principals);
	free(kt);
}

int negotiate_worker_init(const struct negotiate_keytab *kt, const char *replay_cache, char *err,
			  size_t errlen)
{
	if (replay_cache != NULL) {
		char *name = NULL;
		if (asprintf(&name, "file2:%s", replay_cache) < 0) {
			set_err(err, errlen, "out of memory");
			return -1;
		}
		int rc = setenv("KRB5RCACHENAME", name, 1);
		free(name);
		if (rc != 0) {
			set_err(err, errlen, "cannot set the replay cache: %s", strerror(errno));
			return -1;
		}
	}
	if (krb5_gss_register_acceptor_identity(kt->name) != GSS_S_COMPLETE) {
		set_err(err, errlen, "cannot register the keytab with GSS-API");
		return -1;
	}
	return 0;
}

/* Append GSS-API's messages for a status code of type to why. */
static void status_text(OM_uint32 code, int type, char *why, size_t whylen, size_t *o)
{
	OM_uint32 ctx = 0, minor;
	do {
		gss_buffer_desc b = GSS_C_EMPTY_BUFFER;
		if (GSS_ERROR(gss_display_status(&minor, code, type, GSS_C_NO_OID, &ctx, &b)))
			return;
		if (*o < whylen)
			*o += (size_t)snprintf(why + *o, whylen - *o, "%s%.*s", *o ? ": " : "",
					       (int)b.length, (const char *)b.value);
		gss_release_buffer(&minor, &b);
	} while (ctx != 0);
}

/* base64 of b (heap), or NULL. */
static char *b64_encode(const gss_buffer_desc *b)
{
	if (b->length > NEGOTIATE_TOKEN_MAX)
		return NULL;
	char *s = malloc((b->length + 2) / 3 * 4 + 1);
	if (s != NULL)
		EVP_EncodeBlock((unsigned char *)s, b->value, (int)b->length);
	return s;
}

enum negotiate_result negotiate_accept(struct slice token, struct negotiate_grant *g, char *why,
				       size_t whylen)
{
	memset(g, 0, sizeof(*g));
	if (token.len == 0 || token.len > NEGOTIATE_TOKEN_MAX) {
		set_err(why, whylen, token.len == 0 ? "Negotiate without a token"
						    : "Negotiate token longer than 65536 bytes");
		return NEGOTIATE_MALFORMED;
	}
	size_t cap = token.len / 4 * 3 + 3;
	uint8_t *raw = malloc(cap);
	if (raw == NULL)
		return NEGOTIATE_ERROR;
	long n = auth_b64_decode(token.p, token.len, raw, cap);
	if (n <= 0) {
		free(raw);
		set_err(why, whylen, "Negotiate token is not base64");
		return NEGOTIATE_MALFORMED;
	}
	gss_buffer_desc in = { (size_t)n, raw }, out = GSS_C_EMPTY_BUFFER, name = GSS_C_EMPTY_BUFFER;
	gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
	gss_name_t src = GSS_C_NO_NAME;
	OM_uint32 minor, flags = 0, time_rec = 0;
	OM_uint32 major = gss_accept_sec_context(&minor, &ctx, GSS_C_NO_CREDENTIAL, &in,
						 GSS_C_NO_CHANNEL_BINDINGS, &src, NULL, &out, &flags,
						 &time_rec, NULL);
	free(raw);
	enum negotiate_result r = NEGOTIATE_REJECTED;
	size_t o = 0;
	if (major == GSS_S_CONTINUE_NEEDED) {
		set_err(why, whylen, "the mechanism wants another round trip (only Kerberos is "
				     "accepted; NTLM is not)");
	} else if (GSS_ERROR(major)) {
		why[0] = '\0';
		status_text(major, GSS_C_GSS_CODE, why, whylen, &o);
		status_text(minor, GSS_C_MECH_CODE, why, whylen, &o);
	} else if (GSS_ERROR(gss_display_name(&minor, src, &name, NULL)) || name.length == 0 ||
		   memchr(name.value, '\0', name.length) != NULL) {
		set_err(why, whylen, "the client's name cannot be read");
	} else if ((g->name = strndup(name.value, name.length)) == NULL ||
		   (out.length > 0 && (g->reply = b64_encode(&out)) == NULL)) {
		negotiate_grant_clear(g);
		r = NEGOTIATE_ERROR;
	} else {
		g->lifetime = time_rec;
		r = NEGOTIATE_OK;
	}
	gss_release_buffer(&minor, &name);
	gss_release_buffer(&minor, &out);
	gss_release_name(&minor, &src);
	if (ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
	return r;
}

void negotiate_grant_clear(struct negotiate_grant *g)
{
	free(g->name);
	free(g->reply);
	memset(g, 0, sizeof(*g));
}
