/* upstream_config.c - the [upstream] section's checks across keys
 * (config_check.h): the trust store files, the parent and its credentials.
 * Apart from upstream.c so that loading a configuration does not link the
 * event loop. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "config.h"
#include "config_check.h"

/* The header line for the parent (RFC 7617: base64 of user ":" password),
 * allocated to fit whatever lengths the file holds; NULL when out of memory. */
static char *parent_auth_line(const char *user, const char *password)
{
	static const char pre[] = "Proxy-Authorization: Basic ";
	size_t ul = strlen(user), pl = strlen(password), n = ul + 1 + pl;
	size_t b64 = 4 * ((n + 2) / 3);
	char *plain = malloc(n + 1);
	char *line = malloc(sizeof(pre) - 1 + b64 + 3);
	if (plain == NULL || line == NULL || n > INT_MAX) {
		free(plain);
		free(line);
		return NULL;
	}
	memcpy(plain, user, ul);
	plain[ul] = ':';
	memcpy(plain + ul + 1, password, pl + 1);
	memcpy(line, pre, sizeof(pre) - 1);
	int w = EVP_EncodeBlock((unsigned char *)line + sizeof(pre) - 1, (const unsigned char *)plain,
				(int)n);
	OPENSSL_cleanse(plain, n);
	free(plain);
	if (w < 0 || (size_t)w != b64) {
		free(line);
		return NULL;
	}
	memcpy(line + sizeof(pre) - 1 + b64, "\r\n", 3);
	return line;
}

/* parent = one host:port (not port 0); parent_user, parent_password and
 * parent_direct only with it, the first two together. */
static void check_parent(struct config *cfg, struct config_check *chk)
{
	if (cfg->nparent > 1)
		config_problem(chk, "upstream", "parent", "one host:port expected");
	if (cfg->nparent == 1 && strcmp(cfg->parent[0].port, "0") == 0)
		config_problem(chk, "upstream", "parent", "port 0 is not a parent's port");
	if (cfg->nparent == 0 && (cfg->parent_user != NULL || cfg->parent_direct != NULL))
		config_problem(chk, "upstream", cfg->parent_user != NULL ? "parent_user" : "parent_direct",
			       "set only with [upstream] parent");
	if ((cfg->parent_user == NULL) != (cfg->parent_password == NULL))
		config_problem(chk, "upstream", cfg->parent_user == NULL ? "parent_password" : "parent_user",
			       "parent_user and parent_password go together");
	if (cfg->parent_user != NULL && strchr(cfg->parent_user, ':') != NULL)
		config_problem(chk, "upstream", "parent_user", "must not contain ':' (RFC 7617)");
	else if (cfg->parent_user != NULL && cfg->parent_password != NULL &&
		 (cfg->parent_auth = parent_auth_line(cfg->parent_user, cfg->parent_password)) == NULL)
		config_problem(chk, "upstream", "parent_user", "out of memory");
}

void upstream_config_check(struct config *cfg, struct config_check *chk)
{
	struct stat st;

	if (cfg->upstream_ca_file != NULL)
		config_check_readable(chk, "upstream", "ca_file", cfg->upstream_ca_file);
	if (cfg->upstream_ca_path != NULL &&
	    (stat(cfg->upstream_ca_path, &st) != 0 || !S_ISDIR(st.st_mode)))
		config_problem(chk, "upstream", "ca_path", "%s: not a directory", cfg->upstream_ca_path);
	check_parent(cfg, chk);
	config_check_domains(chk, "upstream", "parent_direct", cfg->parent_direct,
			     &cfg->parent_direct_set);
}
